"""Secret parameters at rest: each `x-secret` value is stored as a Fernet token.

Fernet (the `cryptography` library: AES-128-CBC with an HMAC-SHA256, a random IV per token)
keyed by `CATALOG_SECRET_KEY`, a comma-separated list of keys: the first seals, every one
opens (MultiFernet), so a key is rotated by putting a new one first, running
`catalogctl admin rotate-secrets` (every stored token sealed again with the first key), and
then dropping the old one.

A sealed value replaces the secret in the stored parameters by `{"$secret": "<token>"}`.
The API seals what it stores and opens only to validate and compare; the worker opens a
deployment's parameters when it builds the containers. Nothing shows a token: every view
masks it like the secret it holds.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from catalog import config
from packages.secrets import Location, lookup

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

SEALED = "$secret"  # the only key of a sealed value


class SecretKeyError(Exception):
    """No key, a key that is not a Fernet key, or a token none of the keys opens."""


def new_key() -> str:
    """A fresh key for CATALOG_SECRET_KEY (32 random bytes, url-safe base64)."""
    return Fernet.generate_key().decode()


def parse_keys(text: str) -> list[str]:
    """The keys of a CATALOG_SECRET_KEY value (or key file): comma- or line-separated."""
    return [key.strip() for key in text.replace("\n", ",").split(",") if key.strip()]


class SecretBox:
    """Seals and opens secret values with the configured keys (the first one seals)."""

    def __init__(self, keys: Sequence[str] = ()) -> None:
        fernets = []
        for i, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise SecretKeyError(
                    f"CATALOG_SECRET_KEY: key {i} of {len(keys)} is not a Fernet key (32 "
                    "url-safe base64-encoded bytes; `catalogctl admin new-secret-key` makes one)"
                ) from None
        self._fernet = MultiFernet(fernets) if fernets else None

    @property
    def ready(self) -> bool:
        return self._fernet is not None

    def _keys(self) -> MultiFernet:
        if self._fernet is None:
            raise SecretKeyError(
                "CATALOG_SECRET_KEY is not set: secret parameters are stored encrypted and "
                "cannot be sealed or opened without it (see the README's Security model)"
            )
        return self._fernet

    def seal(self, value: Any) -> dict[str, str]:
        token = self._keys().encrypt(json.dumps(value).encode())
        return {SEALED: token.decode()}

    def open(self, sealed: dict[str, str]) -> Any:
        try:
            return json.loads(self._keys().decrypt(sealed[SEALED].encode()))
        except InvalidToken:
            raise SecretKeyError(
                "a stored secret cannot be decrypted with the keys of CATALOG_SECRET_KEY: "
                "was the key that sealed it removed before `catalogctl admin rotate-secrets`?"
            ) from None

    def rotate(self, sealed: dict[str, str]) -> dict[str, str]:
        """The same secret sealed again with the first key."""
        try:
            return {SEALED: self._keys().rotate(sealed[SEALED].encode()).decode()}
        except InvalidToken:
            self.open(sealed)  # raises the error that names the cause
            raise


def box_from(settings: config.Settings) -> SecretBox:
    """The box of the configured keys (CATALOG_SECRET_KEY or its key file)."""
    return SecretBox(parse_keys(config.secret_keys(settings)))


def box_of(session: Session) -> SecretBox:
    """The box of a session's sessionmaker (`catalog.db.make_sessionmaker`)."""
    return session.info.get("secrets") or SecretBox()


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(SEALED), str)


def seal_at(values: dict, locations: Collection[Location], box: SecretBox) -> dict:
    """A copy of `values` with the value at each location sealed (sealed ones stay as they
    are). Locations are the secrets' places (`secret_paths`), none inside another."""
    sealed = copy.deepcopy(values)
    for path in sorted(locations, key=lambda p: (len(p), json.dumps(p))):
        present, value = lookup(sealed, path)
        if path and present and not is_sealed(value):
            lookup(sealed, path[:-1])[1][path[-1]] = box.seal(value)
    return sealed


def open_all(values: Any, box: SecretBox) -> Any:
    """A copy of `values` with every sealed value opened, wherever it is."""
    if is_sealed(values):
        return box.open(values)
    if isinstance(values, dict):
        return {key: open_all(item, box) for key, item in values.items()}
    if isinstance(values, list):
        return [open_all(item, box) for item in values]
    return values


Snapshot = TypeVar("Snapshot", bound=Mapping[str, Any])


def opened(snapshot: Snapshot, box: SecretBox) -> Snapshot:
    """A deployment snapshot with its apps' secret parameters opened, to build containers."""
    return cast(Snapshot, {**snapshot, "apps": open_all(snapshot["apps"], box)})


def revealed(values: Any, box: SecretBox) -> Any:
    """`open_all`, or `values` as they are when a secret cannot be opened (for comparisons
    that must not fail a read)."""
    try:
        return open_all(values, box)
    except SecretKeyError:
        return values


def rotate_all(values: Any, box: SecretBox) -> tuple[Any, int]:
    """A copy of `values` with every sealed value sealed again with the first key, and how
    many there were."""
    if is_sealed(values):
        return box.rotate(values), 1
    if isinstance(values, dict):
        pairs = {key: rotate_all(item, box) for key, item in values.items()}
        return {k: v for k, (v, _) in pairs.items()}, sum(n for _, n in pairs.values())
    if isinstance(values, list):
        items = [rotate_all(item, box) for item in values]
        return [v for v, _ in items], sum(n for _, n in items)
    return values, 0


def contains_sealed(values: Any) -> bool:
    """Whether a sealed value appears anywhere in `values`."""
    if is_sealed(values):
        return True
    if isinstance(values, dict):
        return any(contains_sealed(item) for item in values.values())
    if isinstance(values, list):
        return any(contains_sealed(item) for item in values)
    return False
