"""Images from private registries: whose credentials a deploy's pull is made with, and why an
image already on the engine is not enough on a registry tenants keep credentials for.

A tenant's credentials (`registry_credentials`, the password sealed) serve that tenant's pulls
only. The engine is shared, though: an image tenant A pulled with its credentials stays on it,
and tenant B, holding none, must not run it by naming the same reference. So a *guarded*
repository, one some tenant pulled with its credentials (`guarded_registries`, marked before
that pull and never emptied: the images outlive the credentials), has an engine copy that
proves nothing. Every resolution of such an image is a pull made as the deploying tenant,
with its own credentials for that server or anonymously (never the engine client's own
logins), and only what that pull brings is run: a refused pull fails the deploy naming the
image, whatever the engine holds. A tenant's pull with its own credentials is always such a
pull. Other repositories (the server's public images) follow the service's `pull_policy`,
pulled as the engine client is configured to (the operator's own logins, if any): one tenant's
credentials for a shared hub do not slow every tenant's pulls from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from catalog.models import GuardedRegistry, RegistryCredential
from packages.imageref import PullPolicy, Reference, parse, server_of
from workers.deploy.prepare import PrepareError
from workers.engine import ANONYMOUS, PullAuth
from workers.runtime import Runtime


class PullRefused(PrepareError):
    """A service's image cannot be resolved as its pull policy and its registry require."""


@dataclass(frozen=True)
class Access:
    """What the catalog holds of one registry server for the deploying tenant."""

    server: str
    guarded: bool  # some tenant holds or held credentials for it
    auth: PullAuth | None = None  # the tenant's own credentials for it, opened


@dataclass(frozen=True)
class Pull:
    """How the engine is asked for an image: when it pulls, and as whom (None: as the
    engine client is configured to)."""

    policy: PullPolicy
    auth: PullAuth | None


def access_of(rt: Runtime, tenant_id: str, reference: str) -> Access:
    """The registry server of `reference`, whether it is guarded, and the tenant's
    credentials for it (the password opened here, for this pull only)."""
    ref = parse(reference)
    server, repository = server_of(ref), repository_of(ref)
    with rt.sessions() as session:
        guarded = session.get(GuardedRegistry, (server, repository)) is not None
        own = session.scalar(
            select(RegistryCredential).where(
                RegistryCredential.tenant_id == tenant_id, RegistryCredential.server == server
            )
        )
        auth = None if own is None else PullAuth(own.username, rt.secrets.open(own.password))
        if own is not None and not guarded:
            # Before the pull with credentials: from now on, whoever names this repository
            # pulls it as themselves first, so no tenant runs what these credentials fetched.
            try:
                session.add(GuardedRegistry(server=server, repository=repository))
                session.commit()
            except IntegrityError:
                session.rollback()  # marked meanwhile: guarded all the same
    return Access(server, guarded or own is not None, auth)


def repository_of(ref: Reference) -> str:
    """The repository a reference names on its server (`library/nginx` for Docker Hub's)."""
    path = ref.path
    return f"library/{path}" if server_of(ref) == "docker.io" and "/" not in path else path


def pull_for(reference: str, policy: PullPolicy, access: Access, *, allow_pull: bool) -> Pull:
    """How to resolve `reference` for a service asking `policy`, given its registry's
    `access` and CATALOG_ALLOW_PULL; PullRefused when it cannot be done."""
    if not access.guarded:
        if policy == PullPolicy.ALWAYS and not allow_pull:
            raise PullRefused(
                f"image {reference}: its pull_policy is always, but pulling is off "
                "(CATALOG_ALLOW_PULL)"
            )
        return Pull(policy, None)
    why = (
        f"image {reference} is on {access.server}, in a repository pulled with a tenant's "
        "credentials: each deploy pulls it as the deploying tenant to prove the tenant may read it"
    )
    if policy == PullPolicy.NEVER:
        raise PullRefused(f"{why}, so its pull_policy cannot be never")
    if not allow_pull:
        raise PullRefused(f"{why}, and pulling is off (CATALOG_ALLOW_PULL)")
    return Pull(PullPolicy.ALWAYS, access.auth or ANONYMOUS)
