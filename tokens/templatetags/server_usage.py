"""Server usage for pages of other apps (the licenses page lives in smartaccounts, which
imports nothing of tokens): templates load this library instead."""

from collections import defaultdict
from typing import Any

from django import template

from smartaccounts.models import SmartAccount

from ..selectors import OverUse, overused_servers

register = template.Library()


@register.simple_tag
def over_use_by_product(account: SmartAccount) -> dict[str, list[OverUse]]:
    """{product code: servers of the account using more of it than they hold} (3 queries)."""
    found: dict[str, list[OverUse]] = defaultdict(list)
    for over in overused_servers(account):
        found[over.product.code].append(over)
    return dict(found)


@register.filter
def of_product(over_use: dict[str, list[OverUse]], code: str) -> Any:
    return over_use.get(code, [])
