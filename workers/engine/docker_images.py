"""Images on a Docker engine: resolved exactly by reference, pulled, loaded, listed, removed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound

from packages.imageref import (
    DEFAULT_POLICY,
    Reference,
    RegistryPolicy,
    carries,
    parse,
    reference_problem,
)
from workers.engine import EngineError, InUse, NotFound

_LOADED = re.compile(r"^Loaded image(?: ID)?: (.+)$")


def explained(exc: DockerException) -> str:
    """What the engine said, or what went wrong on the way to it."""
    return str(getattr(exc, "explanation", None) or exc)


class DockerImages:
    """The image half of `DockerEngine`."""

    client: docker.DockerClient

    def image_id(
        self, reference: str, *, pull: bool, registries: RegistryPolicy = DEFAULT_POLICY
    ) -> str:
        """The id of the image `reference` names, pulled first when absent and pulling is
        allowed: exactly that image (its tag written out, and carried by the image found),
        never one the engine's lookup would take for it, such as an id or an id's prefix."""
        problem = reference_problem(reference, registries)
        if problem:  # checked at upload too; this holds for packages stored before, or
            raise EngineError(f"image {reference} {problem}")  # a narrowed allowlist
        ref = parse(reference)
        found = self._exact_image(ref)
        if found is not None:
            return found
        if not pull:
            raise EngineError(f"image {reference} is not on the engine")
        try:
            self.client.images.pull(ref.repository, tag=ref.digest or ref.tag or "latest")
        except (APIError, ImageNotFound) as exc:
            raise EngineError(f"image {reference} could not be pulled: {exc}") from None
        found = self._exact_image(ref)
        if found is None:
            raise EngineError(f"image {reference} was pulled but is not on the engine")
        return found

    def _exact_image(self, ref: Reference) -> str | None:
        attrs = self._image(ref.exact)
        return attrs["Id"] if attrs is not None and carries(attrs, ref) else None

    def _image(self, name: str) -> dict[str, Any] | None:
        try:
            return self.client.api.inspect_image(name)
        except ImageNotFound:
            return None
        except APIError as exc:
            raise EngineError(f"image {name}: {exc.explanation}") from None

    def image_named(self, name: str) -> str | None:
        attrs = self._image(name)
        return None if attrs is None else attrs["Id"]

    def load_image(self, body: Iterable[bytes], what: str) -> list[str]:
        named: list[str] = []
        try:
            for message in self.client.api.load_image(body):
                if "errorDetail" in message or "error" in message:
                    detail = message.get("errorDetail", {}).get("message") or message.get("error")
                    raise EngineError(f"the engine could not load {what}: {detail}")
                found = _LOADED.match(str(message.get("stream", "")).strip())
                if found:
                    named.append(found.group(1))
        except APIError as exc:
            raise EngineError(f"the engine could not load {what}: {exc.explanation}") from None
        return named

    def image_tags(self, pattern: str) -> list[str]:
        try:
            images = self.client.api.images(filters={"reference": pattern})
        except DockerException as exc:
            raise EngineError(f"cannot list images: {explained(exc)}") from None
        return [tag for image in images for tag in image.get("RepoTags") or ()]

    def remove_image(self, name: str) -> None:
        try:
            self.client.api.remove_image(name, noprune=False)
        except ImageNotFound:
            raise NotFound(f"image {name} is not on the engine") from None
        except APIError as exc:
            if exc.status_code == 409:
                raise InUse(f"image {name}: {exc.explanation}") from None
            raise EngineError(f"cannot remove image {name}: {exc.explanation}") from None
