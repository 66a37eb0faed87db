"""Templates judged at upload: syntax, loads of other templates and unknown filters refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from packages.build import load_directory
from packages.errors import ManifestValidationError
from packages.template_check import MAX_TEMPLATE_BYTES, template_problems

MANIFEST = """\
format: catalog/v1
name: org.example.checked
version: 1.0.0
type: application
services:
  web:
    image: catalog-test/busybox:latest
    command: [httpd, -f, "{command}"]
    environment: {{GREETING: "{env}"}}
    files:
      /www/index.html: files/index.html.j2
      /www/raw.txt: files/raw.txt
outputs:
  url: "{output}"
"""


def package(tmp_path: Path, *, command="x", env="x", output="x", page="ok\n") -> Path:
    root = tmp_path / "pkg"
    (root / "files").mkdir(parents=True)
    (root / "manifest.yaml").write_text(MANIFEST.format(command=command, env=env, output=output))
    (root / "files" / "index.html.j2").write_bytes(
        page if isinstance(page, bytes) else page.encode()
    )
    (root / "files" / "raw.txt").write_text("{% include 'x' %} is not a template here\n")
    return root


def problems(root: Path) -> list[str]:
    with pytest.raises(ManifestValidationError) as caught:
        load_directory(root)
    return [str(p) for p in caught.value.problems]


def test_good_templates_pass(tmp_path: Path) -> None:
    root = package(
        tmp_path,
        command="{{ params.x | default('a') | upper }}",
        env="{% if params.y is defined %}y{% endif %}",
        output="http://{{ services.web.hostname }}/",
        page="{% for h in params.hosts | default([]) %}{{ h | e }}{% endfor %}\n",
    )
    assert load_directory(root).manifest.name == "org.example.checked"


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("ok\n{{ broken\n", "files/index.html.j2: line 2: syntax error: "),
        ("a\nb\n{% include 'other.j2' %}\n", "files/index.html.j2: line 3: {% include %} is not"),
        ("{% import 'm.j2' as m %}", "files/index.html.j2: line 1: {% import %} is not allowed"),
        ("{% from 'm.j2' import f %}", "files/index.html.j2: line 1: {% import %} is not allowed"),
        ("\n{% extends 'base.j2' %}", "files/index.html.j2: line 2: {% extends %} is not allowed"),
        ("{{ 1 }}\n{{ x | nosuch }}", "files/index.html.j2: line 2: unknown filter 'nosuch'"),
        ("{% if 0 %}{{ x | nosuch }}{% endif %}", "files/index.html.j2: line 1: unknown filter"),
        ("{% filter nosuch %}x{% endfilter %}", "files/index.html.j2: line 1: unknown filter"),
        ("{{ x is nosuch }}", "files/index.html.j2: line 1: unknown test 'nosuch'"),
        (b"\xff{{ 1 }}", "files/index.html.j2: template files/index.html.j2 is not UTF-8"),
        ("{{ (" * 2000 + "1" + ")" * 2000 + " }}", "files/index.html.j2: "),
    ],
)
def test_a_bad_file_template_is_refused_naming_file_and_line(
    tmp_path: Path, page: str | bytes, expected: str
) -> None:
    found = problems(package(tmp_path, page=page))
    assert len(found) == 1 and found[0].startswith(expected), found


def test_an_oversized_template_file_is_refused(tmp_path: Path) -> None:
    page = os.urandom(MAX_TEMPLATE_BYTES // 2 + 1).hex()  # does not compress: no ratio limit
    found = problems(package(tmp_path, page=page))
    assert found == [
        f"files/index.html.j2: the package's templates hold more than {MAX_TEMPLATE_BYTES} bytes"
    ]


def test_the_template_budget_is_the_whole_packages(tmp_path: Path) -> None:
    third = MAX_TEMPLATE_BYTES // 3
    root = package(tmp_path, env="{{ 1 }}" + "x" * third, page="{{ 1 }}" + "y" * third)
    manifest = root / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace(
        "      /www/raw.txt: files/raw.txt\n",
        "      /www/again.html: files/index.html.j2\n      /www/more.html: files/more.html.j2\n",
    ))  # fmt: skip
    (root / "files" / "more.html.j2").write_text("{{ 1 }}" + "z" * third)
    (root / "files" / "raw.txt").unlink()
    found = problems(root)  # index.html.j2 counts once, for the two targets that share it
    assert found == [
        f"files/more.html.j2: the package's templates hold more than {MAX_TEMPLATE_BYTES} bytes"
    ]


def test_every_bad_field_is_named(tmp_path: Path) -> None:
    bad = {"command": "{{ a | nosuch }}", "env": "{% include 'x' %}", "output": "{{ unclosed"}
    found = problems(package(tmp_path, **bad))
    assert [line.split(": ", 1)[0] for line in found] == [
        "outputs.url",
        "services.web.command[2]",
        "services.web.environment.GREETING",
    ]
    assert found[1] == "services.web.command[2]: line 1: unknown filter 'nosuch'"


def test_a_non_template_file_is_not_parsed(tmp_path: Path) -> None:
    assert load_directory(package(tmp_path)).manifest.services["web"]["files"]


@pytest.mark.parametrize("source", ["plain text {", "{{ 1 }}", "{# c #}{% set a = 1 %}{{ a }}"])
def test_template_problems_of_good_sources(source: str) -> None:
    assert template_problems(source) == []
