"""A new package directory: a manifest and a file template to start from."""

from __future__ import annotations

import os
import re
from pathlib import Path

from packages.errors import PackageError

MANIFEST_TEMPLATE = """\
format: catalog/v1
name: {name}
version: 0.1.0
type: application
title: {title}
description: A web page served by busybox httpd. Edit me.
tags: [example]
parameters:
  type: object
  properties:
    greeting:
      type: string
      default: Hello from the catalog
      maxLength: 200
services:
  web:
    image: catalog-test/busybox:latest
    command: [httpd, -f, -p, "8080", -h, /www]
    ports:
      - {{container: 8080, publish: true}}
    files:
      /www/index.html: files/index.html.j2
    healthcheck:
      http: {{port: 8080, path: /}}
      interval: 1s
      retries: 10
outputs:
  url: "http://{{{{ services.web.hostname }}}}:8080/"
"""

INDEX_TEMPLATE = """\
<!doctype html>
<title>{{ app.name }}</title>
<h1>{{ params.greeting }}</h1>
"""


def default_name(directory: str | os.PathLike) -> str:
    """`org.example.<directory name>`, made FQN-safe."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", Path(directory).resolve().name.lower()).strip("-")
    return f"org.example.{slug or 'app'}"


def init_package(directory: str | os.PathLike, name: str | None = None) -> Path:
    """Create a package directory; refuses to overwrite an existing manifest."""
    root = Path(directory)
    manifest = root / "manifest.yaml"
    if manifest.exists():
        raise PackageError(f"{manifest} already exists")
    name = name or default_name(root)
    title = name.rsplit(".", 1)[-1].replace("-", " ").replace("_", " ").title()
    (root / "files").mkdir(parents=True, exist_ok=True)
    manifest.write_text(MANIFEST_TEMPLATE.format(name=name, title=title))
    (root / "files" / "index.html.j2").write_text(INDEX_TEMPLATE)
    return root
