"""Each app registers how to build the message for its kinds of outbox row."""

from collections.abc import Callable

from django.core.mail import EmailMultiAlternatives

from .models import OutboundEmail

Renderer = Callable[[OutboundEmail], EmailMultiAlternatives | None]

_renderers: dict[str, Renderer] = {}


def register(kind: str) -> Callable[[Renderer], Renderer]:
    def decorator(func: Renderer) -> Renderer:
        _renderers[kind] = func
        return func

    return decorator


def render(row: OutboundEmail) -> EmailMultiAlternatives | None:
    """The message for `row`, or None when there is nothing to send any more."""
    try:
        renderer = _renderers[row.kind]
    except KeyError as exc:
        raise LookupError(f"No e-mail renderer registered for {row.kind!r}") from exc
    return renderer(row)
