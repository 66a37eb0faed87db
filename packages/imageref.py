"""Image references: what a package may name, and how a worker finds exactly that image.

A service's `image` string is a registry reference, `[registry/]path[:tag][@digest]`, and
nothing the engine would also take in its place:

- never an image id: `sha256:<hex>`, or a bare hex name the engine's lookup would match as
  an id prefix when no image of that name exists (so a package could run any image on the
  engine, another tenant's included);
- never a name in the catalog's own registry, `catalog.local`, where the workers load the
  images bundled in packages, per tenant;
- only from a registry the operator allows (`CATALOG_REGISTRIES`): by default any public
  registry name, while loopback, link-local, private and local names (which would have the
  engine call ports on its own host or network) must be listed by name to be allowed.

The worker resolves exactly the reference: always with its tag (`:latest` written out), and
it accepts the image it gets only if that image carries the reference among its own tags or
digests, so no fallback of the engine's lookup is ever taken.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

CATALOG_REGISTRY = "catalog.local"
DOCKER_HUB = "docker.io"
ANY_PUBLIC = "*"
# Names that resolve on the engine's own host or network, never on the public internet.
_LOCAL_SUFFIXES = ("localhost", "local", "localdomain", "internal", "lan", "home", "arpa")
_HEX = re.compile(r"[0-9a-f]+\Z")
_ALPHA_LABEL = re.compile(r"[a-z]{2,63}\Z")


@dataclass(frozen=True)
class Reference:
    """A parsed reference; `registry` is None for Docker Hub's default."""

    registry: str | None
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.path}" if self.registry else self.path

    @property
    def exact(self) -> str:
        """The reference as the engine must be asked for it: the tag always written out."""
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or 'latest'}"


def parse(reference: str) -> Reference:
    """Split a reference the way the engine does: the first part is a registry when it has a
    `.` or a `:`, is `localhost`, or holds an upper-case letter (newer engines take
    `LOCALHOST/x` for the registry LOCALHOST, since no repository path may hold one)."""
    name, _, digest = reference.partition("@")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        registry, path = first, rest
    else:
        registry, path = None, name
    head, colon, tag = path.rpartition(":")
    if colon and "/" not in tag:
        path = head
    else:
        tag = ""
    return Reference(registry, path, tag or None, digest or None)


@dataclass(frozen=True)
class RegistryPolicy:
    """The registries images may come from: those listed, and any public one with `*`."""

    listed: frozenset[str] = frozenset()
    any_public: bool = True

    @classmethod
    def from_setting(cls, text: str) -> RegistryPolicy:
        """`CATALOG_REGISTRIES`: comma-separated `host[:port]` names, `*` for any public one."""
        names = {part.strip().lower() for part in text.split(",") if part.strip()}
        return cls(frozenset(names - {ANY_PUBLIC}), ANY_PUBLIC in names)

    def problem(self, registry: str | None) -> str | None:
        name = (registry or DOCKER_HUB).lower()
        if name in self.listed:
            return None
        if not self.any_public:
            return f"registry {name} is not one of CATALOG_REGISTRIES"
        if not is_public_name(name.rsplit(":", 1)[0] if ":" in name else name):
            return (
                f"registry {name} is a loopback, link-local, private or local address: the "
                "operator must list it in CATALOG_REGISTRIES to allow it"
            )
        return None


DEFAULT_POLICY = RegistryPolicy()


def is_public_name(host: str) -> bool:
    """Whether a registry host is a global IP address or a public DNS name (its last label
    letters only, so no numeric form of an address such as `2130706433` or `127.1`)."""
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    labels = host.lower().split(".")
    if labels[-1] in _LOCAL_SUFFIXES or labels[0] == "localhost":
        return False
    return len(labels) > 1 and _ALPHA_LABEL.match(labels[-1]) is not None


def reference_problem(reference: str, policy: RegistryPolicy = DEFAULT_POLICY) -> str | None:
    """Why a package may not name `reference`, or None."""
    ref = parse(reference)
    if ref.registry is None and ref.path.lower() == "sha256":
        return "is an image id: name the image by its reference (name:tag or name@sha256:...)"
    if ref.registry is None and ref.tag is None and ref.digest is None and _HEX.match(ref.path):
        return "looks like an image id: give its tag (name:tag), so no id can match it"
    if (ref.registry or "").lower().split(":")[0] == CATALOG_REGISTRY:
        return f"names the catalog's own registry {CATALOG_REGISTRY}: bundle the image instead"
    return policy.problem(ref.registry)


def image_problems(
    doc: Mapping[str, Any], policy: RegistryPolicy = DEFAULT_POLICY
) -> Iterator[tuple[tuple[str, ...], str]]:
    """(path, message) for each service image string of a manifest that may not be run."""
    services = doc.get("services")
    for name, service in services.items() if isinstance(services, dict) else ():
        image = service.get("image") if isinstance(service, dict) else None
        if isinstance(image, str) and (problem := reference_problem(image, policy)):
            yield ("services", name, "image"), f"{image!r} {problem}"


def normalise_reference(reference: str) -> str:
    """`nginx` -> `nginx:latest`, `docker.io/library/nginx:1` -> `nginx:1`: the form to compare."""
    name, at, digest = reference.partition("@")
    if not at and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return name + at + digest


def carries(attrs: Mapping[str, Any], ref: Reference) -> bool:
    """Whether an inspected image holds `ref` among its own tags (or digests): the engine
    found it by that name, not by an id or a prefix of one."""
    held = attrs.get("RepoDigests" if ref.digest else "RepoTags") or ()
    return normalise_reference(ref.exact) in {normalise_reference(name) for name in held}
