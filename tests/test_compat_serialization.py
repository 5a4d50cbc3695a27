"""The JSON wire format, unit-tested: Celery's (kombu's) rules without any Redis."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timezone
from decimal import Decimal

import pytest

from app.celery_compat.exceptions import EncodeError
from app.celery_compat.serialization import dumps, from_wire, loads, to_wire


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ((1, (2, 3)), [1, [2, 3]]),
        ({1: "a", None: "c", 1.5: "d"}, {"1": "a", "null": "c", "1.5": "d"}),
        ({True: "b"}, {"true": "b"}),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
         {"__type__": "datetime", "__value__": "2026-01-02T03:04:05+00:00"}),
        (Decimal("1.10"), {"__type__": "decimal", "__value__": "1.10"}),
        (uuid.UUID(int=1), {"__type__": "uuid", "__value__": {"hex": "00000000000000000000000000000001"}}),
        (time(12, 30), {"__type__": "time", "__value__": "12:30:00"}),
        (b"bytes", {"__type__": "bytes", "__value__": "bytes"}),
    ],
)
def test_values_are_encoded_as_kombu_encodes_them(value, wire):
    assert to_wire(value) == wire


@pytest.mark.parametrize("value", [{1}, frozenset(), object(), {(1, 2): "tuple key"}, 1j])
def test_values_json_cannot_carry_are_refused_with_encode_error(value):
    with pytest.raises(EncodeError):
        to_wire(value)


def test_special_types_round_trip_through_a_json_string():
    value = {"when": datetime(2026, 1, 1), "price": Decimal("9.99"), "id": uuid.uuid4(), "raw": b"\xff\x00"}
    assert loads(dumps(value)) == value
    assert from_wire(to_wire(value)) == value
