"""Name, tag and size grammars are ASCII and end at the end of the text (no final newline)."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from catalog.schemas.common import NAME
from catalog.schemas.packages import TAG
from packages.container import parse_bytes, parse_duration


@pytest.mark.parametrize("validator", [NAME, TAG])
@pytest.mark.parametrize("text", ["demo\n", "demo\r", "\uff44emo", "démo"])
def test_names_and_tags_refuse_a_final_newline_and_non_ascii(validator, text):
    with pytest.raises(ValidationError):
        validator(text)


@pytest.mark.parametrize("validator", [NAME, TAG])
def test_names_and_tags_accept_plain_ascii(validator):
    assert validator("demo-1") == "demo-1"


@pytest.mark.parametrize("text", ["\uff12\uff15\uff16m", "\u0662m", "1g\nx"])
def test_sizes_are_ascii(text):
    with pytest.raises(ValueError, match="not a size"):
        parse_bytes(text)


@pytest.mark.parametrize("text", ["\uff12s", "1m\u0663\u0660s"])
def test_durations_are_ascii(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)
