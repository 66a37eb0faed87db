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
from enum import StrEnum
from typing import Any

CATALOG_REGISTRY = "catalog.local"
DOCKER_HUB = "docker.io"
ANY_PUBLIC = "*"
# Names that resolve on the engine's own host or network, never on the public internet.
_LOCAL_SUFFIXES = ("localhost", "local", "localdomain", "internal", "lan", "home", "arpa")
_HEX = re.compile(r"[0-9a-f]+\Z")
_ALPHA_LABEL = re.compile(r"[a-z]{2,63}\Z")
_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_PORT = re.compile(r"[1-9][0-9]{0,4}\Z")
# Names Docker itself reads as Docker Hub.
_HUB_NAMES = frozenset({DOCKER_HUB, "index.docker.io"})


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


class PullPolicy(StrEnum):
    """When a worker pulls a service's registry image (the service's `pull_policy`)."""

    IF_NOT_PRESENT = "if_not_present"  # the default: only when the engine does not have it
    ALWAYS = "always"  # at every deploy (a mutable tag); a failed pull fails the deploy
    NEVER = "never"  # not at all: the deploy fails when the engine does not have it


def pull_policy_of(service: Mapping[str, Any]) -> PullPolicy:
    """A manifest service's pull policy (manifests stored before it existed: the default)."""
    return PullPolicy(service.get("pull_policy") or PullPolicy.IF_NOT_PRESENT)


def server_of(ref: Reference) -> str:
    """The registry server a reference pulls from, as credentials are kept for it: its
    `host[:port]` in lower case (host names ignore case), Docker Hub as docker.io."""
    name = (ref.registry or DOCKER_HUB).lower()
    return DOCKER_HUB if name in _HUB_NAMES else name


def server_problem(server: str) -> str | None:
    """Why `server` is not a registry `host[:port]` an image reference can name, or None.

    It must be what `parse` takes for a reference's registry (a name with a `.` or a port,
    or `localhost`): a bare word would be read as the start of a repository path instead.
    """
    form = "give a registry as image references name it: host[:port], no scheme or path"
    if not server or len(server) > 255 or not server.isascii() or not server.isprintable():
        return form
    if "/" in server or "@" in server or any(c.isspace() for c in server):
        return form
    host, port = server.lower(), None
    if host.startswith("["):  # an IPv6 address, as references write one
        address, bracket, rest = host[1:].partition("]")
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            return f"{server!r} is not an IPv6 address in brackets"
        if not bracket or (rest and not rest.startswith(":")):
            return form
        port = rest[1:] if rest else None
    else:
        host, colon, port_text = host.partition(":")
        port = port_text if colon else None
        if not all(_HOST_LABEL.match(label) for label in host.split(".")):
            return f"{server!r} is not a host name or an IPv4 address: {form}"
    if port is not None and not (_PORT.match(port) and int(port) <= 65535):
        return f"the port of {server!r} is not a number from 1 to 65535"
    if host.split(":")[0] == CATALOG_REGISTRY:
        return f"{CATALOG_REGISTRY} is the catalog's own registry, where no image is pulled from"
    if parse(f"{server}/x").registry != server:
        return (
            f"image references read {server!r} as the start of a repository path, not as a "
            "registry: give its full name (with a '.') or its port"
        )
    return None


def normalise_server(server: str) -> str:
    """A registry server as `server_of` names it (check `server_problem` first)."""
    return server_of(Reference(server, "x", None, None))
