"""Reading `KEY=VALUE` options and parameter files into the JSON the API takes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml


def parse_value(text: str) -> Any:
    """JSON when the text is JSON (3, true, null, [1, 2], {"a": 1}, "007"), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def key_values(pairs: tuple[str, ...], option: str) -> dict[str, Any]:
    """`("a=1", "b=x")` -> {"a": 1, "b": "x"}; a pair without `=` is a usage error."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=option)
        values[key] = parse_value(text)
    return values


def bindings(pairs: tuple[str, ...]) -> dict[str, str]:
    """`("store=db",)` -> {"store": "db"}: slot = the bound app's name."""
    found = key_values(pairs, "--bind")
    return {slot: str(app) for slot, app in found.items()}


def mapping_file(path: Path | None, option: str) -> dict[str, Any]:
    """A YAML or JSON file holding a mapping; {} without a file."""
    if path is None:
        return {}
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"{path} is not YAML or JSON: {exc}", param_hint=option) from None
    if not isinstance(document, dict):
        raise click.BadParameter(f"{path} does not hold a mapping", param_hint=option)
    return document


FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
