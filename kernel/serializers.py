"""The base of the API's input serializers: a write body says only what the contract lets it say.

DRF drops members a serializer does not declare. For a write that is a trap: a partner sending
`{"lines": [...]}` to unlock, or a misspelt `auto_renwe`, gets a 2xx for something other than
what it asked. An input serializer built on StrictSerializer refuses such a body with
400 validation_error naming each member it does not know, at any depth (nested serializers and
lists of them are strict too when they derive from it).
"""

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

UNKNOWN_FIELD = "Unknown field."
# A body can hold many members; the answer names this many, each cut to this length.
UNKNOWN_NAMED_MAX = 50
UNKNOWN_NAME_LENGTH = 100


class StrictSerializer(serializers.Serializer[Any]):
    """A serializer refusing members it does not declare (`{"<member>": ["Unknown field."]}`),
    together with whatever else is wrong with the body."""

    def to_internal_value(self, data: Any) -> Any:
        unknown: dict[str, list[str]] = {}
        if isinstance(data, Mapping):
            for key in data:
                if key in self.fields and not self.fields[key].read_only:
                    continue
                if len(unknown) == UNKNOWN_NAMED_MAX:
                    break
                unknown[str(key)[:UNKNOWN_NAME_LENGTH]] = [UNKNOWN_FIELD]
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not unknown:
                raise
            detail = (
                exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            )
            raise serializers.ValidationError({**detail, **unknown}) from exc
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


def validate_once_built(serializer: serializers.Serializer[Any], data: Any) -> Any:
    """`data` validated by a serializer instance built once and kept: the validated data, or
    the ValidationError that `is_valid(raise_exception=True)` raises.

    `Serializer(data=...)` deep-copies every declared field on each new instance: on the
    fleet's busiest endpoint that copy cost more than the rest of the validation. Validating
    writes nothing on the instance (`run_validation` only reads its fields), so one instance
    serves every request, in any thread. A refused body (rare) is validated once more by a
    fresh instance, so that its errors are worded by DRF's `errors` exactly."""
    try:
        return serializer.run_validation(data)
    except serializers.ValidationError:
        type(serializer)(data=data).is_valid(raise_exception=True)
        raise  # (not reached: the fresh instance refuses the same body)
