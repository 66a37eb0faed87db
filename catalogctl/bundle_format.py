"""The offline bundle file: package archives and image tarballs in one signed tar.

Layout (a plain tar, its members in this order):

- `bundle.json`: `{format: catalog-bundle/v1, created, packages: [{name, version, digest, size,
  member}], images: [{reference, digest, size, member}]}`, packages listed dependencies first;
- `bundle.sig`: `{algorithm: ed25519, public_key, signature}` (base64), the signature of the
  exact bytes of `bundle.json`;
- `packages/<sha256 hex>` and `images/<sha256 hex>`: each archive and `docker save` tarball.

Reading checks, before anything is used: the signature against the trusted keys, the manifest's
shape, and every member's size and sha256 against the manifest; a member the manifest does not
name, a missing one, a link or a second copy refuse the bundle. Members are never extracted:
they are read where they lie in the file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from packages.errors import PackageError

FORMAT = "catalog-bundle/v1"
MANIFEST, SIGNATURE = "bundle.json", "bundle.sig"
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_SIGNATURE_BYTES = 4096
MAX_ENTRIES = 1000  # packages and images of one bundle
CHUNK = 1024 * 1024
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,254}")  # a package, version or reference


class BundleError(PackageError):
    """A bundle that cannot be trusted or read; nothing of it is used."""


@dataclass(frozen=True)
class Entry:
    """A package archive or an image tarball of the bundle."""

    kind: str  # "packages" or "images"
    key: str  # "name version" of a package, the reference of an image
    digest: str
    size: int

    @property
    def member(self) -> str:
        return f"{self.kind}/{self.digest.removeprefix('sha256:')}"


# -- keys ---------------------------------------------------------------------------------------


def generate_key(path: Path) -> str:
    """Write a new private key at `path` (PEM, mode 0600) and its public key beside it
    (`path.pub`); the public key in base64."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public = public_key_text(key.public_key())
    Path(f"{path}.pub").write_text(public + "\n")
    return public


def public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise BundleError(f"{path}: not a private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path}: not an Ed25519 key (make one with `catalogctl bundle keygen`)")
    return key


def trusted_key(text: str) -> str:
    """A public key given as base64, or as the path of a `.pub` file holding it."""
    candidate = text.strip()
    path = Path(candidate)
    if not _is_public_key(candidate) and path.is_file():
        candidate = path.read_text().strip()
    if not _is_public_key(candidate):
        raise BundleError(f"{text}: not an Ed25519 public key (base64) nor a file holding one")
    return candidate


def _is_public_key(text: str) -> bool:
    try:
        return len(base64.b64decode(text, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


# -- writing ------------------------------------------------------------------------------------


def write_bundle(
    target: Path, entries: Iterable[tuple[Entry, Path]], key: Ed25519PrivateKey
) -> dict[str, Any]:
    """Write the bundle at `target` (beside it first, then renamed); its manifest."""
    chosen = list(entries)
    manifest = {
        "format": FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "packages": [_listed(e) for e, _ in chosen if e.kind == "packages"],
        "images": [_listed(e) for e, _ in chosen if e.kind == "images"],
    }
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    signature = {
        "algorithm": "ed25519",
        "public_key": public_key_text(key.public_key()),
        "signature": base64.b64encode(key.sign(body)).decode(),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=".bundle-", dir=target.parent)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            _add_bytes(tar, MANIFEST, body)
            _add_bytes(tar, SIGNATURE, json.dumps(signature).encode())
            for entry, path in chosen:
                info = tarfile.TarInfo(entry.member)
                info.size, info.mode, info.mtime = entry.size, 0o644, 0
                with path.open("rb") as source:
                    tar.addfile(info, source)
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return manifest


def _listed(entry: Entry) -> dict[str, Any]:
    listed: dict[str, Any] = {"digest": entry.digest, "size": entry.size, "member": entry.member}
    if entry.kind == "packages":
        name, version = entry.key.split(" ")
        return {"name": name, "version": version, **listed}
    return {"reference": entry.key, **listed}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def spool(chunks: Iterable[bytes], directory: Path) -> tuple[Path, str, int]:
    """Write `chunks` to a new file in `directory`; (path, sha256 digest, size)."""
    fd, name = tempfile.mkstemp(dir=directory)
    digest, size = hashlib.sha256(), 0
    with os.fdopen(fd, "wb") as out:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return Path(name), "sha256:" + digest.hexdigest(), size


# -- reading ------------------------------------------------------------------------------------


@dataclass
class Bundle:
    """A bundle whose signature, manifest and every member were checked."""

    path: Path
    signer: str  # the public key, base64
    packages: list[Entry]
    images: list[Entry]
    offsets: dict[str, int]  # member -> where its data starts in the file

    @contextmanager
    def open(self, entry: Entry) -> Iterator[BinaryIO]:
        """The bytes of `entry`, read where they lie in the bundle."""
        with self.path.open("rb") as stream:
            stream.seek(self.offsets[entry.member])
            yield cast(BinaryIO, _Window(stream, entry.size))


class _Window:
    """`size` bytes of `stream` from where it stands (a requests body; no seeking)."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream, self.left = stream, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.stream.read(n)
        self.left -= len(data)
        return data

    def __len__(self) -> int:
        return self.left


class _Bounded(io.RawIOBase):
    """The bundle file for tarfile: no single read larger than MAX_READ, so a header that
    claims a gigabyte-long name cannot make it hold the gigabyte before anything is checked."""

    MAX_READ = 2 * 1024 * 1024

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > self.MAX_READ:
            raise BundleError(f"a tar header asks for {n} bytes at once: not a bundle")
        return self.stream.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        return self.stream.tell()


def read_bundle(path: Path, trusted: Iterable[str]) -> Bundle:
    """Check the bundle at `path` against the `trusted` public keys (base64); BundleError."""
    try:
        with path.open("rb") as raw, tarfile.open(fileobj=_Bounded(raw), mode="r:") as tar:
            return _read(path, raw, tar, set(trusted))
    except tarfile.TarError as exc:
        raise BundleError(f"{path.name}: not a bundle ({exc})") from None


def _plain(member: tarfile.TarInfo) -> bool:
    """A regular file stored whole: its bytes are the `size` bytes at its offset."""
    return member.type in (tarfile.REGTYPE, tarfile.AREGTYPE) and member.sparse is None


def _read(path: Path, raw: BinaryIO, tar: tarfile.TarFile, trusted: set[str]) -> Bundle:
    first, second = tar.next(), tar.next()
    if first is None or first.name != MANIFEST or second is None or second.name != SIGNATURE:
        raise BundleError(
            f"{path.name}: not a bundle (it starts with neither bundle.json nor bundle.sig)"
        )
    body = _small(tar, first, MAX_MANIFEST_BYTES)
    signer = _verified(_small(tar, second, MAX_SIGNATURE_BYTES), body, trusted)
    packages, images = _entries(body)
    expected = {e.member: e for e in packages + images}
    offsets: dict[str, int] = {}
    while (member := tar.next()) is not None:
        entry = expected.get(member.name)
        if entry is None or member.name in offsets:
            raise BundleError(
                f"{member.name}: not listed in bundle.json (or listed once, held twice)"
            )
        if not _plain(member) or member.size != entry.size:
            raise BundleError(f"{member.name}: not the {entry.size}-byte file bundle.json lists")
        # Hashed as they lie in the file: the very bytes an import then sends.
        position = raw.tell()
        found, left = hashlib.sha256(), member.size
        raw.seek(member.offset_data)
        while left and (chunk := raw.read(min(CHUNK, left))):
            found.update(chunk)
            left -= len(chunk)
        raw.seek(position)
        if "sha256:" + found.hexdigest() != entry.digest:
            raise BundleError(
                f"{member.name} ({entry.key}): its content does not match its digest {entry.digest}"
            )
        offsets[member.name] = member.offset_data
    missing = sorted(set(expected) - set(offsets))
    if missing:
        raise BundleError(
            f"{path.name}: bundle.json lists {', '.join(missing)}, which it does not hold"
        )
    return Bundle(path, signer, packages, images, offsets)


def _small(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if not _plain(member) or member.size > limit:
        raise BundleError(f"{member.name}: not a file of at most {limit} bytes")
    source = tar.extractfile(member)
    assert source is not None
    return source.read()


def _verified(raw: bytes, body: bytes, trusted: set[str]) -> str:
    try:
        signature = json.loads(raw)
        public = signature["public_key"]
        signed = base64.b64decode(signature["signature"], validate=True)
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public, validate=True))
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise BundleError("bundle.sig: not an Ed25519 signature of bundle.json") from None
    if public not in trusted:
        raise BundleError(
            f"bundle.sig: signed by {public}, a key this catalog does not trust "
            "(give it with --trust, or have an admin register it)"
        )
    try:
        key.verify(signed, body)
    except InvalidSignature:
        raise BundleError(
            "bundle.sig: the signature does not verify: bundle.json was changed"
        ) from None
    return public


def _entries(body: bytes) -> tuple[list[Entry], list[Entry]]:
    try:
        manifest = json.loads(body)
    except ValueError:
        raise BundleError("bundle.json: not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"bundle.json: not a {FORMAT} manifest")
    found: dict[str, list[Entry]] = {}
    for kind, key_fields in (("packages", ("name", "version")), ("images", ("reference",))):
        items = manifest.get(kind)
        if not isinstance(items, list) or len(items) > MAX_ENTRIES:
            raise BundleError(f"bundle.json: {kind} must be a list of at most {MAX_ENTRIES}")
        found[kind] = []
        for i, item in enumerate(items):
            where = f"bundle.json: {kind}[{i}]"
            if not isinstance(item, dict) or not all(
                isinstance(item.get(f), str) for f in key_fields
            ):
                raise BundleError(f"{where}: names no {' and '.join(key_fields)}")
            digest, size = item.get("digest"), item.get("size")
            if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
                raise BundleError(f"{where}: digest must be sha256:<64 hex>")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise BundleError(f"{where}: size must be a byte count")
            if not all(_NAME.fullmatch(item[f]) for f in key_fields):
                raise BundleError(f"{where}: {' and '.join(key_fields)} must be names, not text")
            entry = Entry(kind, " ".join(item[f] for f in key_fields), digest, size)
            listed = [e for k in found.values() for e in k]
            if item.get("member") != entry.member or any(
                e.key == entry.key or e.member == entry.member for e in listed
            ):
                raise BundleError(f"{where}: member must be {entry.member}, listed once")
            found[kind].append(entry)
    return found["packages"], found["images"]
