"""Loading images bundled in packages into the engine, under names the catalog owns.

`docker load` tags whatever the tarball's manifest.json lists in RepoTags: loaded as is, a
tenant's tarball tagged `nginx:latest` would re-point the engine's `nginx:latest` for everyone
(ARCHITECTURE §4). Inspecting the tag before the load and restoring it afterwards would leave a
window in which other deployments resolve the wrong image, and would lose to a crash between
the two steps. So the tarball is never loaded as uploaded:

1. the tarball is checked again (`packages.images.check_image_tarball`), read from the package;
2. the engine is given a rewritten tarball (`packages.images.loadable_tarball`), streamed from
   the package without holding it in memory: only the chosen image's config and layers, and a
   new manifest.json whose only RepoTag is the catalog-owned name
   `catalog.local/<tenant>/<package>:<archive digest hex[:16]>-<image selector hash[:8]>`.
   The tarball's own RepoTags, its `repositories` file and its OCI `index.json` are dropped,
   so the load can create or move no tag but that one: nothing to restore, no window;
3. the load's output is checked to have named only that tag, and its id is returned;
   containers are created from the id, never from a name.

The tag is derived from the package archive's digest (content-addressed: the same bytes give
the same name) and the image's selection in the manifest (`bundled` and `tag`, since one
package may bundle several images), so a later deployment of the same package finds the image
already loaded and reuses it without loading again. The tenant is the one deploying: two
tenants deploying one public package get separate tags for the same image.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from packages.image_load import loadable_tarball
from packages.images import check_image_tarball
from packages.limits import DEFAULT_LIMITS, Limits
from workers.engine import Engine, EngineError

log = logging.getLogger(__name__)

REGISTRY = "catalog.local"
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class LoadedImage:
    """A bundled image on the engine: its id, its catalog-owned name, whether just loaded."""

    image_id: str
    name: str
    loaded: bool  # False when an earlier load was reused


def _component(text: str) -> str:
    """A valid lowercase path component of an image name (Docker's reference grammar)."""

    def separator(match: re.Match[str]) -> str:
        run = match.group(0)
        return run if re.fullmatch(r"[._]|__|-+", run) else "-"

    return re.sub(r"[^a-z0-9]+", separator, text.lower()).strip("._-") or "x"


def catalog_image_name(
    tenant_id: str, package: str, digest: str, bundled: str, tag: str | None
) -> str:
    """`catalog.local/<tenant>/<package>:<digest hex[:16]>-<selector[:8]>`."""
    found = _DIGEST.fullmatch(digest)
    if found is None:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    selector = hashlib.sha256(f"{bundled}\0{tag or ''}".encode()).hexdigest()[:8]
    repository = f"{tenant_prefix(tenant_id)}{_component(package)}"
    return f"{repository}:{found.group(1)[:16]}-{selector}"


def tenant_prefix(tenant_id: str) -> str:
    """`catalog.local/<tenant>/`: how the name of every image loaded for the tenant starts."""
    return f"{REGISTRY}/{_component(tenant_id)}/"


def ensure_bundled_image(
    engine: Engine,
    *,
    tenant_id: str,
    package: str,
    digest: str,
    image: Mapping[str, Any],
    open_member: Callable[[str], BinaryIO],
    limits: Limits = DEFAULT_LIMITS,
) -> LoadedImage:
    """The engine's id of a service's bundled image, loaded first unless it already is.

    `image` is the service's `{bundled, tag?}`; `open_member(name)` opens a member of the
    package archive (digest `digest`) from its start, and is called twice when loading.
    Raises ImageError for a bad tarball (before the engine sees any of it), EngineError when
    the engine fails.
    """
    bundled, tag = image["bundled"], image.get("tag")
    name = catalog_image_name(tenant_id, package, digest, bundled, tag)
    image_id = engine.image_named(name)
    if image_id is not None:
        return LoadedImage(image_id, name, loaded=False)
    with open_member(bundled) as stream:
        tarball = check_image_tarball(stream, bundled, limits)
    chosen = tarball.select(tag)
    with open_member(bundled) as stream:
        named = engine.load_image(loadable_tarball(stream, tarball, chosen, name, limits), bundled)
    if named != [name]:
        raise EngineError(f"loading {bundled} named {named}, expected only {name}")
    image_id = engine.image_named(name)
    if image_id is None:
        raise EngineError(f"{bundled} was loaded but {name} is not on the engine")
    log.info("loaded %s of %s as %s (%s)", bundled, package, name, image_id)
    return LoadedImage(image_id, name, loaded=True)
