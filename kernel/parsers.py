"""Request parsing for the API: JSON that cannot hurt the process behind it."""

from typing import Any

from rest_framework import exceptions, parsers, renderers
from rest_framework.negotiation import DefaultContentNegotiation

MAX_DEPTH = 32


def _depth_exceeded(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing bodies nested deeper than any request of the contract (a
    2,000-level body would otherwise exhaust the interpreter's recursion) with 400."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from exc
        if _depth_exceeded(data, MAX_DEPTH):
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH}.")
        return data


class ContentNegotiation(DefaultContentNegotiation):
    """A client that asks for problem documents (``Accept: application/problem+json``) is
    answered in JSON: success bodies as application/json, errors as problem+json."""

    def select_renderer(self, request: Any, renderers_list: Any, format_suffix: Any = None) -> Any:
        accept = request.META.get("HTTP_ACCEPT", "")
        if "application/problem+json" in accept:
            json_renderer = next(
                (r for r in renderers_list if isinstance(r, renderers.JSONRenderer)), None
            )
            if json_renderer is not None:
                return json_renderer, json_renderer.media_type
        return super().select_renderer(request, renderers_list, format_suffix)
