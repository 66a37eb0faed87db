"""Secret parameters sealed with Fernet: rotation through a key list, and clear errors."""

from __future__ import annotations

import pytest

from catalog.secretbox import (
    SecretBox,
    SecretKeyError,
    is_sealed,
    new_key,
    open_all,
    parse_keys,
    rotate_all,
    seal_at,
)

OLD, NEW = new_key(), new_key()
VALUES = {"password": "hunter2-long", "nested": {"keys": ["k1", {"deep": 7}]}, "size": 3}
PLACES = {("password",), ("nested", "keys", 1)}


def test_sealed_values_hold_no_clear_text_and_open_to_what_was_sealed():
    sealed = seal_at(VALUES, PLACES, SecretBox([OLD]))

    assert "hunter2" not in repr(sealed) and "deep" not in repr(sealed)
    assert is_sealed(sealed["password"]) and is_sealed(sealed["nested"]["keys"][1])
    assert sealed["size"] == 3 and sealed["nested"]["keys"][0] == "k1"
    assert open_all(sealed, SecretBox([OLD])) == VALUES
    assert seal_at(sealed, PLACES, SecretBox([OLD])) == sealed  # sealed ones stay as they are


def test_rotation_new_key_first_old_one_second_then_the_old_one_removed():
    sealed = seal_at(VALUES, PLACES, SecretBox([OLD]))
    both = SecretBox(parse_keys(f" {NEW} ,\n{OLD}\n"))

    assert open_all(sealed, both) == VALUES  # the old key, listed second, still opens
    rotated, count = rotate_all(sealed, both)

    assert count == 2
    assert open_all(rotated, SecretBox([NEW])) == VALUES  # the old key can go
    with pytest.raises(SecretKeyError, match="was the key that sealed it removed"):
        open_all(rotated, SecretBox([OLD]))


def test_no_key_and_a_malformed_key_are_clear_errors():
    with pytest.raises(SecretKeyError, match="CATALOG_SECRET_KEY is not set"):
        seal_at(VALUES, PLACES, SecretBox())
    assert seal_at({"size": 1}, set(), SecretBox()) == {"size": 1}  # no secret: no key needed
    with pytest.raises(SecretKeyError, match="key 1 of 1 is not a Fernet key"):
        SecretBox(["too-short"])


def test_up_creates_a_key_file_readable_only_by_its_owner_once(tmp_path):
    from catalog import config
    from catalog.secretbox import box_from
    from catalogctl.commands.up import _secret_key

    settings = config.load({"CATALOG_HOME": str(tmp_path)})
    _secret_key(settings)
    key_file = tmp_path / "secret.key"
    first = key_file.read_text()
    _secret_key(settings)  # an existing key is never replaced

    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text() == first
    assert box_from(settings).ready  # the services find it without CATALOG_SECRET_KEY
    _secret_key(settings.replace(secret_key_file=str(tmp_path / "other"), secret_key=OLD))
    assert not (tmp_path / "other").exists()  # a key given in the environment: no file
