"""What the services of one Compose file share while it is imported: the report, the
parameters, the problems found, and the names services and volumes get in the catalog."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packages.importers import Imported
from packages.importers.compose_values import Parameters
from packages.problems import Path as KeyPath
from packages.problems import Problems, format_path

MAX_COPIED_FILE = 1024 * 1024  # a bind-mounted file beside the Compose file, copied in
MAX_COPIED_FILES = 64  # files of one bind-mounted directory


@dataclass
class Context:
    """What every service of one Compose file shares while it is imported."""

    base: Path  # the Compose file's directory
    imported: Imported
    params: Parameters
    found: Problems
    drop_unsafe: bool
    labels: dict[str, str]  # Compose service name -> catalog service name
    volumes: dict[str, str] = field(default_factory=dict)  # Compose volume -> catalog volume
    taken_volumes: set[str] = field(default_factory=set)
    extras: dict[str, Any] = field(default_factory=dict)  # the document's secrets, configs
    # Files beside the Compose file never copied into the package: the file itself, `.env`,
    # env files and secret files (what the operator keeps next to it, not what it publishes).
    private: set[Path] = field(default_factory=set)

    def note(self, path: KeyPath, message: str) -> None:
        self.imported.note(format_path(path), message)

    def unsafe(self, path: KeyPath, message: str) -> None:
        if self.drop_unsafe:
            self.note(path, f"dropped: {message}")
        else:
            self.found.add(path, message)

    @functools.cached_property
    def _host_pattern(self) -> re.Pattern[str]:
        """Compiled once: the services' names, longest first, where a host stands."""
        names = "|".join(re.escape(n) for n in sorted(self.labels, key=len, reverse=True))
        return re.compile(rf"(://(?:[^/@\s]*@)?|^|(?<=[\s,=]))({names})(?=[:/?,\s]|$)")

    def hosts(self, text: str, whole: bool) -> list[tuple[bool, str, str]]:
        """`text` split where it names a service as a host: (is a template, piece, service).

        A host is a service's name in a URL (`mongodb://user@db:27017`), before a port
        (`db:5432`, `--brokers=kafka:9092`), or the whole value when `whole` (DB_HOST=db).
        """
        if not self.labels:
            return [(False, text, "")]
        pattern = self._host_pattern
        pieces: list[tuple[bool, str, str]] = []
        end = 0
        for match in re.finditer(pattern, text):
            after = text[match.end() :]
            if not (
                match.group(1) or re.match(r":[0-9]", after) or (whole and match.group(0) == text)
            ):
                continue
            label = self.labels[match.group(2)]
            pieces.append((False, text[end : match.start(2)], ""))
            pieces.append((True, f"{{{{ services.{label}.hostname }}}}", match.group(2)))
            end = match.end()
        pieces.append((False, text[end:], ""))
        return [p for p in pieces if p[1]]

    def template(self, value: Any, path: KeyPath, *, host_key: bool = False) -> str:
        """`value` as a catalog template: variables become parameters, services' names hosts.

        `host_key`: the value is a host's (DB_HOST), so a service's name alone is its host.
        """

        def hosts(text: str) -> list[tuple[bool, str]]:
            pieces = self.hosts(text, whole=host_key)
            for name in dict.fromkeys(name for raw, _, name in pieces if raw):
                self.note(path, f"the host {name} became services.{self.labels[name]}.hostname")
            return [(raw, piece) for raw, piece, _ in pieces]

        return self.params.template(text_of(value), format_path(path), hosts)


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def inside(base: Path, relative: str) -> Path | None:
    """`relative` beside the Compose file, when it stays inside its directory and is no link."""
    path = base / relative
    try:
        resolved = path.resolve(strict=True)
        resolved.relative_to(base.resolve())
    except (OSError, ValueError):
        return None
    return None if path.is_symlink() else resolved
