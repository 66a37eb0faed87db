"""The deployment snapshot: what the API stores with a deployment and the workers run.

A deployment row's `spec` column holds it as JSON; these types say its shape to the
code on both sides (the API writes it once, workers only read it).
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class AppSnapshot(TypedDict):
    """One app with its version resolved and its parameters' defaults applied."""

    name: str
    package: str
    version: str
    digest: str  # the package archive's sha256, as published
    parameters: dict[str, Any]  # secret values sealed (catalog.secretbox)
    bindings: dict[str, str]  # binding name -> the app it names in the environment
    manifest: dict[str, Any]  # the version's manifest, defaults filled


class DeploymentSnapshot(TypedDict):
    """The environment as one deployment makes it: its settings and its apps by name."""

    settings: dict[str, Any]
    apps: list[AppSnapshot]
    # Each container's share of the host's log budget, fixed when the deployment is made
    # (absent from snapshots stored before the budget existed).
    log_share: NotRequired[int]
