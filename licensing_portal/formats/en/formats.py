"""Dates as the portal writes them (licensing_portal/templatetags/timefmt.py), for what Django
formats itself: the back office's lists and read-only fields. Times are stored and shown in
UTC, and say so."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = r"Y-m-d H:i \U\T\C"
SHORT_DATETIME_FORMAT = r"Y-m-d H:i \U\T\C"
TIME_FORMAT = r"H:i \U\T\C"
