"""Named profiles (API address and token) in the CLI's config file, written with mode 0600.

The file is `$CATALOGCTL_CONFIG`, else `$XDG_CONFIG_HOME/catalogctl/config.yaml`, else
`~/.config/catalogctl/config.yaml`:

    current: local
    profiles:
      local: {url: "http://127.0.0.1:8000", token: "cat_..."}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import click
import yaml


def config_path() -> Path:
    override = os.environ.get("CATALOGCTL_CONFIG")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base).expanduser() / "catalogctl" / "config.yaml"


@dataclass
class Profile:
    url: str
    token: str | None = None


@dataclass
class Config:
    path: Path
    current: str | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise click.ClickException(
                f"no profile {name!r} in {self.path}; "
                f"create it with `catalogctl login --profile {name} --url URL --token TOKEN`"
            ) from None

    def save(self) -> None:
        """Write the file, readable by its owner only (it holds tokens)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        document = {
            "current": self.current,
            "profiles": {
                name: {"url": p.url, **({"token": p.token} if p.token else {})}
                for name, p in sorted(self.profiles.items())
            },
        }
        text = yaml.safe_dump(document, sort_keys=False)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(partial, 0o600)  # also when an earlier partial file had other bits
        os.replace(partial, self.path)


def load() -> Config:
    """The config file's profiles; an absent file is an empty config."""
    path = config_path()
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        return Config(path)
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise click.ClickException(f"{path}: expected a mapping with `current` and `profiles`")
    profiles = {}
    for name, entry in (document.get("profiles") or {}).items():
        if not isinstance(entry, dict) or not entry.get("url"):
            raise click.ClickException(f"{path}: profile {name!r} needs a `url`")
        profiles[str(name)] = Profile(url=str(entry["url"]), token=entry.get("token"))
    return Config(path, document.get("current"), profiles)
