"""The tarball the engine is given: only the chosen image, named by the catalog's tag."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from packages.archive.names import normalise_name
from packages.errors import ImageError
from packages.image_streams import CHUNK, SPECIAL, Prefixed, Refused, next_member, open_tar
from packages.images import MANIFEST_JSON, BundledImage, ImageTarball
from packages.limits import DEFAULT_LIMITS, Limits


def _header(name: str, size: int, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = size, 0o644
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return bytes(-size % tarfile.BLOCKSIZE)


def loadable_tarball(
    stream: BinaryIO,
    tarball: ImageTarball,
    image: BundledImage,
    repo_tag: str,
    limits: Limits = DEFAULT_LIMITS,
) -> Iterator[bytes]:
    """The tarball to load, as chunks: `image`'s config and layers, re-read from `stream`
    (the same member, read again from its start), and a manifest.json naming only `repo_tag`.

    Everything else of the original (other images, its RepoTags, `repositories`, `index.json`)
    is left out. A member whose size differs from what was checked is refused.
    """
    wanted = {image.config, *image.layers}
    emitted: set[str] = set()
    directories: set[str] = set()
    tar = open_tar(io.BufferedReader(Prefixed(b"", stream), CHUNK))
    while True:
        try:
            info = next_member(tar)
        except Refused as refused:
            raise ImageError(refused.message, path=tarball.name) from None
        if info is None:
            break
        if not info.isreg() or info.sparse is not None or info.type in SPECIAL:
            continue
        name = normalise_name(info.name, False, limits)
        if name not in wanted or name in emitted:
            continue
        if info.size != tarball.sizes.get(name):
            raise ImageError(f"member {name!r} changed since it was checked", path=tarball.name)
        parts = name.split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in directories:
                directories.add(directory)
                yield _header(directory, 0, directory=True)
        yield _header(name, info.size)
        data = tar.extractfile(info)
        assert data is not None
        left = info.size
        while left:
            chunk = data.read(min(CHUNK, left))
            if not chunk:
                raise ImageError(f"member {name!r} is truncated", path=tarball.name)
            left -= len(chunk)
            yield chunk
        yield _padding(info.size)
        emitted.add(name)
    if wanted - emitted:
        missing = ", ".join(sorted(wanted - emitted))
        raise ImageError(f"members missing on a second read: {missing}", path=tarball.name)
    manifest = json.dumps(
        [{"Config": image.config, "RepoTags": [repo_tag], "Layers": list(image.layers)}]
    ).encode()
    yield _header(MANIFEST_JSON, len(manifest))
    yield manifest + _padding(len(manifest))
    yield bytes(2 * tarfile.BLOCKSIZE)
