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
from packages.limits import KiB
from packages.render import parse_template, render_file, render_outputs, render_service

#: Template source one package may hold, its fields and files together. Parsing costs up
#: to ~7 us a byte of the upload's CPU (rendering costs more, within the render limits).
MAX_TEMPLATE_BYTES = 256 * KiB
# Nodes that would read another template; the sandbox has no loader, so they only fail later.
_LOADS: dict[type[nodes.Node], str] = {
    nodes.Include: "include", nodes.Import: "import", nodes.FromImport: "import",
    nodes.Extends: "extends",
}  # fmt: skip


def _node_problems(tree: nodes.Template, filters: Any, tests: Any) -> list[str]:
    found = []
    wanted: tuple[type[nodes.Node], ...] = (*_LOADS, nodes.Filter, nodes.Test)
    for node in tree.find_all(wanted):
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
    """A renderer that parses: it records each template's problems under `path`.

    Every source counts against one budget for the package (MAX_TEMPLATE_BYTES); past it,
    one problem says so and nothing more is parsed.
    """

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.path = ""  # a file's member name; empty: the field's own path
        self.files: set[str] = set()  # members parsed
        self._left = MAX_TEMPLATE_BYTES

    def __call__(self, source: str, *, service: str, field: str) -> str:
        path = self.path or (f"services.{service}.{field}" if service else field)
        self.charge(path, len(source.encode("utf-8", "replace")))
        if self._left >= 0:
            self.problems += [Problem(path, message) for message in template_problems(source)]
        return source

    def charge(self, path: str, size: int) -> None:
        was, self._left = self._left, self._left - size
        if self._left < 0 <= was:
            message = f"the package's templates hold more than {MAX_TEMPLATE_BYTES} bytes"
            self.problems.append(Problem(path, message))

    def walk(self, walker: Callable[..., Any], *args: Any) -> None:
        """Run a render walker; what it refuses itself (not UTF-8, not a scalar) is a problem."""
        try:
            walker(*args, self)
        except RenderError as exc:
            self.problems.append(
                Problem(self.path or exc.problems[0].path, exc.problems[0].message)
            )


def _check_files(checker: _Checker, name: str, service: Mapping, archive: Members) -> None:
    for target, member in sorted((service.get("files") or {}).items()):
        if not member.endswith(".j2") or member in checker.files:
            continue  # a member several targets share is parsed once
        checker.files.add(member)
        checker.path = member
        size = archive.size_of(member)
        if size > MAX_TEMPLATE_BYTES:  # too large to be read at all
            checker.charge(member, size)
        else:
            checker.walk(render_file, name, target, member, archive.read(member))
        checker.path = ""


class Members(Protocol):
    """The archive's members, as `packages.archive.PackageArchive` reads them."""

    def size_of(self, name: str) -> int: ...

    def read(self, name: str) -> bytes: ...


def check_templates(raw: Mapping[str, Any], archive: Members) -> None:
    """Parse every template of a validated manifest and of the files it renders.

    Raises ManifestValidationError naming each field or file, and the line.
    """
    checker = _Checker()
    for name, service in sorted((raw.get("services") or {}).items()):
        checker.walk(render_service, name, service)
        _check_files(checker, name, service, archive)
    checker.walk(render_outputs, raw.get("outputs") or {})
    if checker.problems:
        raise ManifestValidationError(sorted(checker.problems, key=lambda p: (p.path, p.message)))
