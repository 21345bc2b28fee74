import uuid

from django.http import Http404


def uuid_or_404(value: object) -> uuid.UUID:
    """Public ids are UUIDs; anything else names nothing, so it is a 404 like a foreign id."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise Http404("No such object.") from exc
