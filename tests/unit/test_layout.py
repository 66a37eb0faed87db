"""The layout the code keeps: docker-py is imported by the engine adapter alone."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("catalog", "packages", "workers", "catalogctl")
ENGINE = ROOT / "workers" / "engine"


def _modules() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def _imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, top-level name) of every absolute import in the module, nested ones too."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def test_the_walk_finds_the_modules() -> None:
    found = {path.relative_to(ROOT).as_posix() for path in _modules()}
    assert {"workers/engine/docker.py", "catalog/api/context.py", "packages/container.py"} <= found


def test_only_the_engine_adapter_imports_docker() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _modules()
        if ENGINE not in path.parents
        for line, name in _imported(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        if name == "docker"
    ]
    assert offenders == [], "docker-py is the engine adapter's (workers/engine/) alone"


def test_the_check_sees_each_form_of_import() -> None:
    source = "import docker\nimport docker.errors as e\nfrom docker.types import Mount\n"
    source += "def f():\n    from docker import from_env\n"
    source += "from workers.engine.docker import connect\nfrom . import docker\n"
    assert [name for _, name in sorted(_imported(ast.parse(source)))] == [
        "docker", "docker", "docker", "docker", "workers",
    ]  # fmt: skip
