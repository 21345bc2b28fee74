"""Text that may reach an e-mail header (a subject, a recipient) — an order reference, a
customer's or a person's name, an address: one rule for every front door (SECURITY.md S24).

A CR or LF there breaks the header: Django refuses to build the message, and the outbox row
fails on every retry while the business change it tells of stands. Other control characters
(NUL, ESC, NEL, the Unicode line and paragraph separators) have no business in a name either,
so the rule refuses them all, at intake, before anything is written.
"""

import unicodedata

from django.core.exceptions import ValidationError

CONTROL_CHARACTERS_MESSAGE = "Line breaks and other control characters are not allowed here."

# Unicode categories refused: control characters (C0, DEL, C1: CR, LF, NUL, NEL...) and the
# line and paragraph separators, which mail and text tools also take as line breaks.
_REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in value)


def refuse_control_characters(value: str) -> None:
    """A field validator (Django forms and models, DRF serializers) for header-bound text."""
    if isinstance(value, str) and has_control_characters(value):
        raise ValidationError(CONTROL_CHARACTERS_MESSAGE, code="control_characters")
