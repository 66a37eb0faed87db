"""Response JSON: orjson, with the stdlib for what orjson cannot write."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from flask import Flask

from catalog.jsonprovider import OrjsonProvider


def provider() -> OrjsonProvider:
    return OrjsonProvider(Flask(__name__))


def test_order_and_values_survive():
    document = {"b": 1, "a": [True, None, "é"], "when": datetime(2026, 1, 2, tzinfo=UTC)}
    text = provider().dumps(document)
    assert list(json.loads(text)) == ["b", "a", "when"]
    assert json.loads(text)["when"] == "2026-01-02T00:00:00+00:00"


def test_integers_past_64_bits_are_written_exactly():
    assert json.loads(provider().dumps({"n": 2**70, "m": -(2**65)})) == {"n": 2**70, "m": -(2**65)}


def test_decimals_go_through_flasks_fallback():
    assert json.loads(provider().dumps({"d": Decimal("1.50")})) == {"d": "1.50"}
