"""Calendar arithmetic for license terms."""

import calendar
from datetime import datetime


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later; the month's last day when that day is missing."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
