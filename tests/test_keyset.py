"""kernel.keyset: cursors carry a row's sort values and pk, signed, and only the list (and
sort) that handed them out takes them back; counts stop at the cap."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from kernel.keyset import InvalidCursor, Key, capped_count, decode_cursor, encode_cursor
from smartaccounts.models import Organization

from .factories import OrganizationFactory

KEYS = (Key("created_at", descending=True), Key("name"), Key("size"), Key("pk"))


@dataclass
class Row:
    created_at: datetime
    name: str
    size: int
    pk: uuid.UUID


ROW = Row(datetime(2031, 3, 10, 6, 0, 1, 5, tzinfo=UTC), "Zeta Srl", 7, uuid.uuid4())


def test_a_cursor_gives_back_the_row_s_values_and_direction():
    values, backwards = decode_cursor("list", KEYS, encode_cursor("list", KEYS, ROW))
    assert values == [ROW.created_at, ROW.name, ROW.size, ROW.pk]
    assert backwards is False
    assert decode_cursor("list", KEYS, encode_cursor("list", KEYS, ROW, backwards=True))[1]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),  # the signature
        lambda c: "x" + c,  # the payload
        lambda c: c.split(":")[0],  # no signature
        lambda c: "",
        lambda c: "not a cursor at all",
    ],
)
def test_a_tampered_cursor_is_refused(tamper):
    with pytest.raises(InvalidCursor):
        decode_cursor("list", KEYS, tamper(encode_cursor("list", KEYS, ROW)))


def test_a_cursor_of_another_list_or_sort_is_refused():
    cursor = encode_cursor("list", KEYS, ROW)
    with pytest.raises(InvalidCursor):
        decode_cursor("other", KEYS, cursor)
    with pytest.raises(InvalidCursor):
        decode_cursor("list", KEYS[:2], cursor)


@pytest.mark.django_db
def test_counts_stop_past_the_cap():
    OrganizationFactory.create_batch(7)
    everything = Organization.objects.all()

    assert capped_count(everything, cap=100) == 7
    assert capped_count(everything, cap=5) == 6  # "more than 5"
