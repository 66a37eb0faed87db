"""Render a package's templates (service fields, config files, outputs) in a Jinja2 sandbox.

The walkers (`render_service`, `render_file`, `render_outputs`) find the template
values and hand each to a `TextRenderer`. Deployments use one that runs in a child
process with hard limits (`packages.render_process`); `in_process` renders here and
serves that child and the tests. The sandbox is `packages.render_sandbox`, the inputs
`packages.render_scope`.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any, Protocol

from packages.errors import RenderError
from packages.render_sandbox import (
    MAX_RENDERED_BYTES,
    SAFE_JINJA,
    clear_compiled,
    jinja_version,
    parse_template,
    render_text,
)
from packages.render_scope import as_context, template_context

__all__ = [
    "MAX_RENDERED_BYTES",
    "SAFE_JINJA",
    "TextRenderer",
    "clear_compiled",
    "in_process",
    "is_template",
    "jinja_version",
    "parse_template",
    "render_file",
    "render_outputs",
    "render_service",
    "render_text",
    "template_context",
]

_TEMPLATE_MARKERS = ("{{", "{%", "{#")


def is_template(source: str) -> bool:
    """Whether `source` holds Jinja markup at all; plain strings are used as they are."""
    return any(marker in source for marker in _TEMPLATE_MARKERS)


class TextRenderer(Protocol):
    """Renders one template value of a context; raises RenderError naming service and field."""

    def __call__(self, source: str, *, service: str, field: str) -> str: ...


def in_process(context: Mapping[str, Any]) -> TextRenderer:
    """A renderer of `context` in this process: for the render child and for tests only."""
    return functools.partial(render_text, context=as_context(context))


def _render_text(source: str, render: TextRenderer, *, service: str, field: str) -> str:
    if not is_template(source):
        return source
    return render(source, service=service, field=field)


def _as_text(value: Any, *, service: str, field: str) -> str:
    """The text form of a scalar: YAML's spelling for booleans and null."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    raise RenderError(
        f"expected a string or number, got {type(value).__name__}", service=service, field=field
    )


def _render_scalar(value: Any, render: TextRenderer, *, service: str, field: str) -> str:
    if not isinstance(value, str):
        return _as_text(value, service=service, field=field)
    return _render_text(value, render, service=service, field=field)


def _render_command(
    value: str | list[Any] | None, render: TextRenderer, *, service: str, field: str
) -> str | list[str] | None:
    """A command as written: a list renders item by item, a string (shell-split later) whole."""
    if value is None:
        return None
    if isinstance(value, str):
        return _render_text(value, render, service=service, field=field)
    return [
        _render_scalar(v, render, service=service, field=f"{field}[{i}]")
        for i, v in enumerate(value)
    ]


def render_service(name: str, service: Mapping[str, Any], render: TextRenderer) -> dict:
    """A new service dict with every template field rendered; everything else copied as is.

    Rendered: `command`, `entrypoint`, `environment` values (non-strings become
    strings: `true`/`false` for booleans, `""` for null), `healthcheck.command`,
    `user` and `working_dir` (a numeric `user` becomes a string). The `image` is never
    a template: the worker resolves exactly the reference the manifest names.
    """
    rendered = copy.deepcopy(dict(service))
    for key in ("command", "entrypoint"):
        if key in service:
            rendered[key] = _render_command(service[key], render, service=name, field=key)
    if service.get("environment") is not None:
        rendered["environment"] = {
            var: _render_scalar(value, render, service=name, field=f"environment.{var}")
            for var, value in service["environment"].items()
        }
    for key in ("user", "working_dir"):
        if service.get(key) is not None:  # YAML reads `user: 1000` as a number
            rendered[key] = _render_scalar(service[key], render, service=name, field=key)
    healthcheck = rendered.get("healthcheck")
    if isinstance(healthcheck, dict) and "command" in healthcheck:
        field = "healthcheck.command"
        healthcheck["command"] = _render_command(
            healthcheck["command"], render, service=name, field=field
        )
    return rendered


def render_file(
    service_name: str,
    container_path: str,
    member: str,
    source: bytes,
    render: TextRenderer,
) -> bytes:
    """The bytes to write at `container_path`: a `.j2` member rendered as UTF-8, others as is."""
    if not member.endswith(".j2"):
        return source
    field = f"files.{container_path}"
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError:
        raise RenderError(
            f"template {member} is not UTF-8", service=service_name, field=field
        ) from None
    try:
        return _render_text(text, render, service=service_name, field=field).encode("utf-8")
    except RenderError as exc:  # name the member too: that is the file the publisher wrote
        message = f"{member}: {exc.problems[0].message}"
        raise RenderError(
            message, service=service_name, field=field, variable=exc.variable
        ) from None


def render_outputs(outputs: Mapping[str, Any], render: TextRenderer) -> dict[str, str]:
    """An app's outputs rendered, as binders will see them under `bindings.<slot>.outputs`."""
    return {
        key: _render_scalar(value, render, service="", field=f"outputs.{key}")
        for key, value in outputs.items()
    }
