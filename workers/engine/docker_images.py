"""Images on a Docker engine: resolved exactly by reference, pulled, loaded, listed, removed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound

from packages.imageref import (
    DEFAULT_POLICY,
    PullPolicy,
    Reference,
    RegistryPolicy,
    carries,
    parse,
    reference_problem,
)
from workers.engine import EngineError, InUse, NotFound, PullAuth

_LOADED = re.compile(r"^Loaded image(?: ID)?: (.+)$")


def explained(exc: DockerException) -> str:
    """What the engine said, or what went wrong on the way to it."""
    return str(getattr(exc, "explanation", None) or exc)


def _without(message: str, auth: PullAuth | None) -> str:
    """`message` with the password masked, should an engine or a registry ever echo it."""
    return message.replace(auth.password, "********") if auth and auth.password else message


class DockerImages:
    """The image half of `DockerEngine`."""

    client: docker.DockerClient

    def image_id(
        self,
        reference: str,
        *,
        pull: bool,
        registries: RegistryPolicy = DEFAULT_POLICY,
        policy: PullPolicy = PullPolicy.IF_NOT_PRESENT,
        auth: PullAuth | None = None,
    ) -> str:
        """The id of the image `reference` names, pulled first as `policy` says unless `pull`
        is False: exactly that image (its tag written out, and carried by the image found),
        never one the engine's lookup would take for it, such as an id or an id's prefix."""
        problem = reference_problem(reference, registries)
        if problem:  # checked at upload too; this holds for packages stored before, or
            raise EngineError(f"image {reference} {problem}")  # a narrowed allowlist
        ref = parse(reference)
        pulls = pull and policy != PullPolicy.NEVER
        if not (pulls and policy == PullPolicy.ALWAYS):
            found = self._exact_image(ref)
            if found is not None:
                return found
            if not pulls:
                never = " (its pull_policy is never)" if policy == PullPolicy.NEVER else ""
                raise EngineError(f"image {reference} is not on the engine{never}")
        self._pull(ref, reference, auth)
        found = self._exact_image(ref)
        if found is None:
            raise EngineError(f"image {reference} was pulled but is not on the engine")
        return found

    def _pull(self, ref: Reference, reference: str, auth: PullAuth | None) -> None:
        """Pull `ref` as `auth`; an error the engine reports, before or while it streams the
        pull's progress, is an EngineError (so a present image never stands in for it)."""
        # An empty auth config is an anonymous pull: docker-py would send the client's own
        # logins (~/.docker/config.json) for None.
        config = None if auth is None else (
            {"username": auth.username, "password": auth.password} if auth.username else {}
        )  # fmt: skip
        tag = ref.digest or ref.tag or "latest"
        failed = f"image {reference} could not be pulled"
        try:
            for message in self.client.api.pull(
                ref.repository, tag=tag, stream=True, decode=True, auth_config=config
            ):
                if "error" in message or "errorDetail" in message:
                    detail = message.get("errorDetail", {}).get("message") or message.get("error")
                    raise EngineError(_without(f"{failed}: {detail}", auth))
        except (APIError, ImageNotFound) as exc:
            raise EngineError(_without(f"{failed}: {explained(exc)}", auth)) from None

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

    def save_image(self, reference: str) -> Iterator[bytes]:
        ref = parse(reference)
        if self._exact_image(ref) is None:
            raise NotFound(f"image {reference} is not on the engine")
        try:
            yield from self.client.api.get_image(ref.exact, chunk_size=1024 * 1024)
        except APIError as exc:
            raise EngineError(f"cannot save image {reference}: {exc.explanation}") from None
