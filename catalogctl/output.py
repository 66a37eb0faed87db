"""Printing API objects: JSON and YAML as the API returns them, or tables and records for people.

Tables go through rich (column widths that know wide characters; no markup is interpreted in
values). Without a terminal they are plain text as wide as their content, so they can be piped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from catalogctl.context import output_format

Getter = str | Callable[[dict], Any]
Columns = Sequence[tuple[str, Getter]]


def _value(item: dict, getter: Getter) -> Any:
    return getter(item) if callable(getter) else item.get(getter)


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return ",".join(f"{k}={cell(v)}" for k, v in value.items()) or "-"
    return str(value)


def when(value: str | None) -> str:
    """An API timestamp, shortened to the second."""
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def _console() -> Console:
    if sys.stdout.isatty():
        return Console(highlight=False, markup=False, emoji=False)
    return Console(width=1000, highlight=False, markup=False, emoji=False, color_system=None)


def table(items: Iterable[dict], columns: Columns) -> None:
    grid = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for header, _ in columns:
        grid.add_column(header, no_wrap=True, overflow="ellipsis")
    for item in items:
        grid.add_row(*(cell(_value(item, getter)) for _, getter in columns))
    console = _console()
    with console.capture() as captured:
        console.print(grid)
    for line in captured.get().splitlines():
        click.echo(line.rstrip())


def record(item: dict, fields: Columns) -> None:
    """`label: value` lines, labels aligned."""
    width = max(len(label) for label, _ in fields) + 1
    for label, getter in fields:
        click.echo(f"{label + ':':<{width}} {cell(_value(item, getter))}")


def dump(data: Any) -> None:
    """The data in the chosen machine format (json or yaml)."""
    if output_format() == "yaml":
        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
    else:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def show(data: Any, human: Callable[[Any], None]) -> None:
    """`data` as JSON or YAML, or through `human` for the table format."""
    if output_format() == "table":
        human(data)
    else:
        dump(data)


def show_list(items: list[dict], columns: Columns) -> None:
    show(items, lambda rows: table(rows, columns))


def show_record(item: dict, fields: Columns) -> None:
    show(item, lambda it: record(it, fields))


def done(message: str, data: Any = None) -> None:
    """A change made: one line for people; the API's answer (or {}) as JSON or YAML."""
    show({} if data is None else data, lambda _: click.echo(message))
