"""Templates judged at upload: each parses, loads no other template, names only known filters.

The fields checked are exactly the fields a deployment renders: the render walkers
(`render_service`, `render_file`, `render_outputs`) are run with a renderer that
parses instead of rendering, so the two can never disagree about what is a template.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from jinja2 import TemplateSyntaxError, nodes

from packages.errors import ManifestValidationError, Problem, RenderError
from packages.limits import MiB
from packages.render import parse_template, render_file, render_outputs, render_service

#: A template file larger than this is refused: its output could not be used anyway.
MAX_TEMPLATE_BYTES = 1 * MiB
# Nodes that would read another template; the sandbox has no loader, so they only fail later.
_LOADS = {nodes.Include: "include", nodes.Import: "import", nodes.FromImport: "import",
          nodes.Extends: "extends"}  # fmt: skip


def _node_problems(tree: nodes.Template, filters: Any, tests: Any) -> list[str]:
    found = []
    for node in tree.find_all((*_LOADS, nodes.Filter, nodes.Test)):
        if type(node) in _LOADS:
            found.append(f"line {node.lineno}: {{% {_LOADS[type(node)]} %}} is not allowed "
                         "(a template cannot load another template)")  # fmt: skip
        elif isinstance(node, nodes.Filter) and node.name not in filters:
            found.append(f"line {node.lineno}: unknown filter {node.name!r}")
        elif isinstance(node, nodes.Test) and node.name not in tests:
            found.append(f"line {node.lineno}: unknown test {node.name!r}")
    return found


def template_problems(source: str) -> list[str]:
    """What is wrong with one template, each message starting with its line; [] if nothing."""
    try:
        tree, filters, tests = parse_template(source)
    except TemplateSyntaxError as exc:
        return [f"line {exc.lineno}: syntax error: {exc.message}"]
    except RecursionError:
        return ["the template nests too deep"]
    return _node_problems(tree, filters, tests)


class _Checker:
    """A renderer that parses: it records each template's problems under its path."""

    def __init__(self, path_of: Callable[[str, str], str]) -> None:
        self.problems: list[Problem] = []
        self._path_of = path_of

    def __call__(self, source: str, *, service: str, field: str) -> str:
        path = self._path_of(service, field)
        self.problems += [Problem(path, message) for message in template_problems(source)]
        return source


def _field_path(service: str, field: str) -> str:
    return f"services.{service}.{field}" if service else field


def _check_files(name: str, service: Mapping, archive: Members, found: list) -> None:
    for target, member in sorted((service.get("files") or {}).items()):
        if not member.endswith(".j2"):
            continue
        if archive.size_of(member) > MAX_TEMPLATE_BYTES:
            found.append(Problem(member, f"a template may hold at most {MAX_TEMPLATE_BYTES} bytes"))
            continue
        source = archive.read(member)
        checker = _Checker(lambda _service, _field, member=member: member)
        try:
            render_file(name, target, member, source, checker)
        except RenderError as exc:
            found.append(Problem(member, exc.problems[0].message))
        found += checker.problems


class Members(Protocol):
    """The archive's members, as `packages.archive.PackageArchive` reads them."""

    def size_of(self, name: str) -> int: ...

    def read(self, name: str) -> bytes: ...


def check_templates(raw: Mapping[str, Any], archive: Members) -> None:
    """Parse every template of a validated manifest and of the files it renders.

    Raises ManifestValidationError naming each field or file, and the line.
    """
    found: list[Problem] = []
    checker = _Checker(_field_path)
    for name, service in sorted((raw.get("services") or {}).items()):
        try:
            render_service(name, service, checker)
        except RenderError as exc:
            found.append(Problem(str(exc.problems[0].path), exc.problems[0].message))
        _check_files(name, service, archive, found)
    try:
        render_outputs(raw.get("outputs") or {}, checker)
    except RenderError as exc:
        found.append(Problem(str(exc.problems[0].path), exc.problems[0].message))
    found = checker.problems + found
    if found:
        raise ManifestValidationError(sorted(found, key=lambda p: (p.path, p.message)))
