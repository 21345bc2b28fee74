"""Request parsing for the API: JSON that cannot hurt the process behind it."""

import re
from typing import Any

from rest_framework import exceptions, parsers, renderers
from rest_framework.negotiation import DefaultContentNegotiation

MAX_DEPTH = 32
# JSON may escape half of a UTF-16 pair ("\ud800") on its own: Python keeps it in the string, but
# it is no text: UTF-8 cannot encode it, so neither the database nor a response could hold it.
SURROGATE = re.compile("[\ud800-\udfff]")
SURROGATE_MESSAGE = "Surrogate characters are not allowed: U+{:X}."


def has_surrogate(text: str) -> bool:
    return SURROGATE.search(text) is not None


def _printable(name: str) -> str:
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def surrogate_errors(value: Any) -> dict[str, list[str]]:
    """{member path: [message]} for the first string (member name or value) in a parsed JSON
    document holding a lone surrogate; {} when there is none. Paths are dotted like the
    problem documents' `errors` (`usage.<code>`, `lines.0.product`)."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            found = SURROGATE.search(item)
            if found:
                return {path or "non_field_errors": [SURROGATE_MESSAGE.format(ord(found[0]))]}
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{path}.{key}" if path else str(key)
                found = SURROGATE.search(name)
                if found:
                    message = SURROGATE_MESSAGE.format(ord(found[0]))
                    return {_printable(name): [message]}
                stack.append((child, name))
        elif isinstance(item, list):
            stack.extend((child, f"{path}.{n}" if path else str(n)) for n, child in enumerate(item))
    return {}


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
        errors = surrogate_errors(data)
        if errors:  # in any member, read by a serializer or not: a 400 naming it, never a 500
            raise exceptions.ValidationError(errors)
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
