"""The bundle file: what it holds is trusted only when signed by a trusted key and whole."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from catalogctl.bundle_format import (
    BundleError,
    Entry,
    generate_key,
    load_private_key,
    public_key_text,
    read_bundle,
    trusted_key,
    write_bundle,
)

ARCHIVE, IMAGE = b"package archive bytes" * 100, b"image tarball bytes" * 300


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def key(tmp_path) -> Ed25519PrivateKey:
    generate_key(tmp_path / "key")
    return load_private_key(tmp_path / "key")


@pytest.fixture
def bundle(tmp_path, key) -> Path:
    (tmp_path / "a").write_bytes(ARCHIVE)
    (tmp_path / "i").write_bytes(IMAGE)
    entries = [
        (Entry("images", "acme/app:1", digest(IMAGE), len(IMAGE)), tmp_path / "i"),
        (Entry("packages", "org.acme.app 1.0.0", digest(ARCHIVE), len(ARCHIVE)), tmp_path / "a"),
    ]
    target = tmp_path / "app.bundle"
    write_bundle(target, entries, key)
    return target


def crafted(path: Path, key: Ed25519PrivateKey, manifest: dict, members: list[tuple[str, bytes]],
            *, link: str | None = None) -> Path:  # fmt: skip
    """A bundle written by hand: `manifest` signed by `key`, then `members` (and a link)."""
    body = json.dumps(manifest).encode()
    signature = {"algorithm": "ed25519", "public_key": public_key_text(key.public_key()),
                 "signature": base64.b64encode(key.sign(body)).decode()}  # fmt: skip
    with tarfile.open(path, "w") as tar:
        for name, data in [("bundle.json", body), ("bundle.sig", json.dumps(signature).encode()),
                           *members]:  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return path


def manifest_of(*entries: tuple[str, str, bytes]) -> dict:
    packages, images = [], []
    for kind, key, data in entries:
        item = {"digest": digest(data), "size": len(data),
                "member": f"{kind}/{digest(data).removeprefix('sha256:')}"}  # fmt: skip
        if kind == "packages":
            name, version = key.split(" ")
            packages.append({"name": name, "version": version, **item})
        else:
            images.append({"reference": key, **item})
    return {"format": "catalog-bundle/v1", "packages": packages, "images": images}


def test_a_bundle_reads_back_whole_and_its_members_where_they_lie(bundle, key):
    found = read_bundle(bundle, [public_key_text(key.public_key())])
    assert [e.key for e in found.packages] == ["org.acme.app 1.0.0"]
    assert [e.key for e in found.images] == ["acme/app:1"]
    with found.open(found.packages[0]) as body:
        assert body.read() == ARCHIVE
    with found.open(found.images[0]) as body:
        assert body.read(10) + body.read() == IMAGE


def test_a_bundle_signed_by_a_key_not_trusted_is_refused(bundle, tmp_path):
    other = generate_key(tmp_path / "other")
    with pytest.raises(BundleError, match="a key this catalog does not trust"):
        read_bundle(bundle, [other])


def flip(path: Path, offset: int) -> None:
    with path.open("r+b") as out:
        out.seek(offset)
        byte = out.read(1)
        out.seek(offset)
        out.write(bytes([byte[0] ^ 0x01]))


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ("bundle.json", "the signature does not verify|not JSON"),
        ("images/", "does not match its digest"),
        ("packages/", "does not match its digest"),
    ],
)
def test_one_byte_changed_anywhere_refuses_the_bundle(bundle, key, member, message):
    with tarfile.open(bundle) as tar:
        info = next(m for m in tar.getmembers() if m.name.startswith(member))
    flip(bundle, info.offset_data + info.size // 2)
    with pytest.raises(BundleError, match=message):
        read_bundle(bundle, [public_key_text(key.public_key())])


@pytest.mark.parametrize(
    ("members", "link", "message"),
    [
        ([], None, "which it does not hold"),
        ([("ARCHIVE", ARCHIVE), ("extra", b"x")], None, "extra: not listed in bundle.json"),
        ([("ARCHIVE", ARCHIVE), ("ARCHIVE", ARCHIVE)], None, "held twice"),
        ([("ARCHIVE", ARCHIVE + b"!")], None, "not the 2100-byte file"),
        ([], "ARCHIVE", "not the 2100-byte file bundle.json lists"),
    ],
)
def test_members_must_be_exactly_what_the_signed_manifest_lists(
    tmp_path, key, members, link, message
):
    name = f"packages/{digest(ARCHIVE).removeprefix('sha256:')}"
    members = [(name if m == "ARCHIVE" else m, data) for m, data in members]
    path = crafted(tmp_path / "b", key, manifest_of(("packages", "org.acme.app 1.0.0", ARCHIVE)),
                   members, link=name if link else None)  # fmt: skip
    with pytest.raises(BundleError, match=message):
        read_bundle(path, [public_key_text(key.public_key())])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other"}, "not a catalog-bundle/v1 manifest"),
        ({"packages": {}}, "packages must be a list"),
        ({"packages": [{"name": "a.b", "version": "1.0.0", "digest": "md5:x", "size": 1}]},
         "digest must be sha256"),
        ({"images": [{"reference": "x:1", "digest": digest(b""), "size": 0, "member": "../x"}]},
         "member must be images/"),
        ({"images": [{"reference": "x:1", "digest": digest(b""), "size": True,
                      "member": "images/" + "0" * 64}]}, "size must be a byte count"),
    ],
)  # fmt: skip
def test_a_signed_manifest_of_the_wrong_shape_is_refused(tmp_path, key, change, message):
    manifest = {**manifest_of(), **change}
    path = crafted(tmp_path / "b", key, manifest, [])
    with pytest.raises(BundleError, match=message):
        read_bundle(path, [public_key_text(key.public_key())])


def test_a_file_that_is_no_bundle_is_refused(tmp_path):
    (tmp_path / "x").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(BundleError, match="not a bundle"):
        read_bundle(tmp_path / "x", [])


def test_keys_are_written_private_and_given_as_base64_or_a_file(tmp_path):
    public = generate_key(tmp_path / "k")
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    assert trusted_key(public) == public
    assert trusted_key(str(tmp_path / "k.pub")) == public
    with pytest.raises(BundleError, match="not an Ed25519 public key"):
        trusted_key("not-a-key")
    with pytest.raises(FileExistsError):
        generate_key(tmp_path / "k")


def test_a_sparse_member_is_refused_though_tarfile_would_read_it_whole(tmp_path, key):
    name = f"packages/{digest(ARCHIVE).removeprefix('sha256:')}"
    path = crafted(tmp_path / "b", key, manifest_of(("packages", "org.acme.app 1.0.0", ARCHIVE)),
                   [(name, ARCHIVE)])  # fmt: skip
    with tarfile.open(path) as tar:
        offset = next(m for m in tar.getmembers() if m.name == name).offset
    with path.open("r+b") as out:  # the member's type flag: GNU sparse ("S")
        out.seek(offset + 156)
        out.write(b"S")
    with path.open("r+b") as out:  # its header checksum, recomputed
        out.seek(offset)
        block = bytearray(out.read(512))
        block[148:156] = b" " * 8
        out.seek(offset + 148)
        out.write(b"%06o\0 " % sum(block))
    with pytest.raises(BundleError, match=r"not the 2100-byte file|not a bundle"):
        read_bundle(path, [public_key_text(key.public_key())])


def test_a_header_asking_for_a_huge_name_is_refused_before_it_is_read(tmp_path, key):
    path = tmp_path / "b"
    info = tarfile.TarInfo("././@LongLink")
    info.type, info.size = tarfile.GNUTYPE_LONGNAME, 1024**3
    with path.open("wb") as out:
        out.write(info.tobuf(format=tarfile.GNU_FORMAT))
        out.truncate(512 + 1024**3)  # sparse on disk: nothing is written
    with pytest.raises(BundleError, match=r"asks for .* bytes at once|not a bundle"):
        read_bundle(path, [public_key_text(key.public_key())])


def test_one_member_listed_twice_is_refused(tmp_path, key):
    manifest = manifest_of(("images", "acme/a:1", IMAGE), ("images", "acme/b:1", IMAGE))
    path = crafted(tmp_path / "b", key, manifest, [])
    with pytest.raises(BundleError, match="listed once"):
        read_bundle(path, [public_key_text(key.public_key())])
