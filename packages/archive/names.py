"""Member names: normalisation, traversal and placement checks, duplicate detection."""

from __future__ import annotations

import re
import unicodedata

from packages.characters import bidi_problem, printable
from packages.errors import ArchiveLimitError, DuplicateMemberError, UnsafeMemberError
from packages.limits import Limits

__all__ = [
    "IMAGES_DIR",
    "NameRegistry",
    "check_placement",
    "is_root",
    "normalise_name",
    "printable",
]

IMAGES_DIR = "images/"

_DRIVE = re.compile(r"[A-Za-z]:")


def _check_encoding(raw: str) -> None:
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, kept as surrogates by the tar reader
        raise UnsafeMemberError("name is not valid UTF-8", path=printable(raw)) from None
    if any(unicodedata.category(c) == "Cc" for c in raw):
        raise UnsafeMemberError("name contains a NUL or control character", path=printable(raw))
    problem = bidi_problem(raw)
    if problem:
        raise UnsafeMemberError(f"name {problem}", path=printable(raw))


def _check_anchor(raw: str) -> None:
    if raw.startswith("/"):
        raise UnsafeMemberError("absolute path", path=printable(raw))
    if _DRIVE.match(raw):
        raise UnsafeMemberError("path starts with a drive letter", path=printable(raw))


def _check_segments(raw: str, segments: list[str], limits: Limits) -> None:
    if ".." in segments:
        raise UnsafeMemberError("path traversal ('..' segment)", path=printable(raw))
    if "" in segments:
        raise UnsafeMemberError("empty path segment", path=printable(raw))
    if "." in segments:
        raise UnsafeMemberError("'.' path segment", path=printable(raw))
    if len(segments) > limits.max_name_depth:
        raise ArchiveLimitError(
            f"path is {len(segments)} levels deep, limit {limits.max_name_depth}",
            path=printable(raw),
        )


def normalise_name(raw: str, is_dir: bool, limits: Limits) -> str:
    """The member's name without a leading './' or a directory's trailing '/', or raise."""
    if not raw:
        raise UnsafeMemberError("empty member name")
    _check_encoding(raw)
    length = len(raw.encode("utf-8"))
    if length > limits.max_name_length:
        raise ArchiveLimitError(
            f"name is {length} bytes long, limit {limits.max_name_length}", path=printable(raw)
        )
    _check_anchor(raw)
    if "\\" in raw:
        raise UnsafeMemberError("name contains a backslash", path=printable(raw))
    # `tar -C dir -czf x.tar.gz .` writes "./name": that prefix means the archive's root.
    name = raw[2:] if raw.startswith("./") else raw
    if is_dir and name.endswith("/"):
        name = name[:-1]
    _check_segments(raw, name.split("/"), limits)
    return name


def is_root(raw: str, is_dir: bool) -> bool:
    """The "./" entry some tar writers add for the archive's root directory."""
    return is_dir and raw in (".", "./")


def _fold(name: str) -> str:
    """Canonical caseless form: names equal here clash on some filesystem."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())


def _clash(name: str, other: str) -> str:
    if name == other:
        return f"duplicate of {printable(other)!r}"
    if unicodedata.normalize("NFC", name) == unicodedata.normalize("NFC", other):
        return f"same name as {printable(other)!r} after Unicode normalisation (NFC/NFD)"
    return f"same name as {printable(other)!r} ignoring case"


class NameRegistry:
    """Refuses duplicate names, and files that other members use as a directory."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, bool]] = {}  # folded -> (name, is_dir)
        self._parents: dict[str, str] = {}  # folded directory -> a member inside it

    def add(self, name: str, is_dir: bool) -> None:
        key = _fold(name)
        if key in self._entries:
            other, other_dir = self._entries[key]
            problem = _clash(name, other)
            if is_dir != other_dir:
                problem += " (a file and a directory)"
            raise DuplicateMemberError(problem, path=printable(name))
        if not is_dir and key in self._parents:
            raise DuplicateMemberError(
                f"is a file, but {printable(self._parents[key])!r} uses it as a directory",
                path=printable(name),
            )
        parts = key.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            found = self._entries.get(parent)
            if found and not found[1]:
                raise DuplicateMemberError(
                    f"uses the file {printable(found[0])!r} as a directory", path=printable(name)
                )
            self._parents.setdefault(parent, name)
        self._entries[key] = (name, is_dir)


def check_placement(name: str) -> None:
    # Only docker-save tarballs may live under images/, and they are checked separately.
    if name.startswith(IMAGES_DIR) and not name.endswith(".tar"):
        raise UnsafeMemberError("files under images/ must be .tar image tarballs", path=name)
