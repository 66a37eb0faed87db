"""`catalogctl bundle`: carry packages and every image they run to a catalog with no registry.

`export` resolves what the named versions need (`requires`, and the packages their required
binding slots name, transitively, at the newest versions that satisfy every range), downloads
their archives (digests verified), saves the registry images their services run from a Docker
engine, and writes one signed file. `import` checks the whole file first (signature, every
digest), then every version and image against the catalog (identical: skipped; another digest
under the same name: refused, naming it), and only then publishes: images first, then
packages, dependencies first. A second import of the same bundle changes nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click

from catalogctl.bundle_format import (
    Bundle,
    BundleError,
    Entry,
    generate_key,
    load_private_key,
    read_bundle,
    spool,
    trusted_key,
    write_bundle,
)
from catalogctl.client import ApiError, Client, path
from catalogctl.context import api, connection_options
from packages.errors import Problem
from packages.versions import select_version


@click.group()
def bundle() -> None:
    """Offline bundles: packages and their images in one signed file."""


def output_file(help: str):
    """`-o/--output FILE`: the file a command writes."""
    return click.option("-o", "--output", "target", required=True, help=help,
                        type=click.Path(dir_okay=False, path_type=Path))  # fmt: skip


@bundle.command("keygen")
@output_file("Private key file to write (its public key goes to FILE.pub).")
def keygen_command(target: Path) -> None:
    """Make an Ed25519 key pair to sign bundles with."""
    if target.exists():
        raise click.ClickException(f"{target} exists already")
    public = generate_key(target)
    click.echo(f"wrote {target} (private, keep it) and {target}.pub")
    click.echo(f"public key: {public}")
    click.echo(
        f"trust it on the importing catalog: catalogctl bundle trust {target}.pub --name NAME"
    )


# -- export ---------------------------------------------------------------------------------


def _versions(client: Client, name: str) -> tuple[list[str], list[str]]:
    detail = client.json("GET", path("packages", name))
    versions = [v["version"] for v in detail["versions"]]
    return versions, [v["version"] for v in detail["versions"] if v.get("yanked")]


def resolve(client: Client, wanted: list[str]) -> list[dict[str, Any]]:
    """The versions `wanted` (NAME or NAME@VERSION) and all they need, dependencies first."""
    chosen: dict[str, dict[str, Any]] = {}
    ranges: dict[str, list[tuple[str, str]]] = {}  # name -> [(range, who asked)]
    order: list[str] = []

    def visit(name: str, constraint: str | None, asked_by: str) -> None:
        if constraint is not None:
            ranges.setdefault(name, []).append((constraint, asked_by))
        if name in chosen:
            have = chosen[name]["version"]
            for rng, who in ranges.get(name, []):
                if select_version(rng, [have]) is None:
                    raise click.ClickException(
                        f"{who} needs {name} {rng}, but {name} {have} was chosen for another"
                    )
            return
        available, yanked = _versions(client, name)
        version = select_version(constraint, available, yanked=yanked)
        if version is None:
            wanted = f"{name} {constraint}" if constraint else name
            raise click.ClickException(f"{asked_by} needs {wanted}: no version matches")
        detail = client.json("GET", path("packages", name, "versions", version))
        chosen[name] = detail
        manifest = detail["manifest"]
        label = f"{name} {version}"
        for other, rng in (manifest.get("requires") or {}).items():
            visit(other, rng, label)
        for slot in (manifest.get("bindings") or {}).values():
            if slot.get("required"):
                visit(slot["package"], slot.get("version"), label)
        order.append(name)

    for spec in wanted:
        name, _, version = spec.partition("@")
        visit(name, f"={version}" if version else None, "the command line")
    return [chosen[name] for name in order]


def _images(versions: list[dict[str, Any]]) -> list[str]:
    """Registry references the versions' services run (bundled images travel in archives)."""
    found: dict[str, None] = {}
    for detail in versions:
        for spec in (detail["manifest"].get("services") or {}).values():
            if isinstance(spec.get("image"), str):
                found.setdefault(spec["image"], None)
    return list(found)


def _download(client: Client, detail: dict[str, Any], directory: Path) -> tuple[Path, str, int]:
    name, version = detail["package"], detail["version"]
    response = client.request(
        "GET", path("packages", name, "versions", version, "archive"), stream=True
    )
    with response:
        spooled = spool(response.iter_content(1024 * 1024), directory)
    if spooled[1] != detail["digest"]:
        raise click.ClickException(
            f"{name} {version}: the archive received does not match its digest {detail['digest']}"
        )
    return spooled


@bundle.command("export")
@click.argument("packages", nargs=-1, required=True)
@output_file("Bundle file to write.")
@click.option(
    "--sign-key",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Private key to sign the bundle with (`bundle keygen`).",
)
@click.option(
    "--from-engine",
    default="",
    metavar="URL",
    help="Docker engine to save images from; default DOCKER_HOST or the local one.",
)
@connection_options
def export_command(
    packages: tuple[str, ...], target: Path, sign_key: Path, from_engine: str
) -> None:
    """Write PACKAGES (NAME or NAME@VERSION), all they need and the images they run to one file."""
    key = load_private_key(sign_key)
    client = api()
    versions = resolve(client, list(packages))
    references = _images(versions)
    with tempfile.TemporaryDirectory(prefix="bundle-", dir=target.parent.resolve()) as work:
        directory = Path(work)
        entries: list[tuple[Entry, Path]] = []
        if references:  # one engine client for every image; none when nothing is saved
            from workers.engine.docker import connect  # only export talks to an engine

            engine = connect(from_engine)
        for reference in references:
            entries.append(_saved_image(engine, reference, directory))
            click.echo(f"image {reference}: {entries[-1][0].size} bytes", err=True)
        for detail in versions:
            file, digest, size = _download(client, detail, directory)
            entries.append(
                (Entry("packages", f"{detail['package']} {detail['version']}", digest, size), file)
            )
            click.echo(f"package {detail['package']} {detail['version']}", err=True)
        write_bundle(target, entries, key)
    click.echo(
        f"wrote {target}: {len(versions)} package(s), {len(references)} image(s), "
        f"{target.stat().st_size} bytes"
    )


def _saved_image(engine, reference: str, directory: Path) -> tuple[Entry, Path]:
    from workers.engine import EngineError, NotFound

    try:
        file, digest, size = spool(engine.save_image(reference), directory)
    except NotFound:
        raise click.ClickException(
            f"image {reference} is not on the engine: pull it there first, or give --from-engine"
        ) from None
    except EngineError as exc:
        raise click.ClickException(str(exc)) from None
    return Entry("images", reference, digest, size), file


# -- import ---------------------------------------------------------------------------------


def _held_version(client: Client, entry: Entry) -> str | None:
    name, version = entry.key.split(" ")
    try:
        return client.json("GET", path("packages", name, "versions", version))["digest"]
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def _held_image(client: Client, entry: Entry) -> str | None:
    items = client.json("GET", "/images", params={"reference": entry.key})["items"]
    return items[0]["digest"] if items else None


def plan_import(client: Client, found: Bundle) -> tuple[list[Entry], list[Entry]]:
    """(what to publish, what is here already); refuses, naming each, what conflicts."""
    publish, skip, conflicts = [], [], []
    for entry in found.images + found.packages:
        held = (_held_image if entry.kind == "images" else _held_version)(client, entry)
        if held is None:
            publish.append(entry)
        elif held == entry.digest:
            skip.append(entry)
        else:
            conflicts.append(
                f"{entry.key}: the catalog holds it with another digest ({held}); "
                f"the bundle's is {entry.digest}"
            )
    if conflicts:
        raise BundleError([_problem(line) for line in conflicts])
    return publish, skip


def _problem(line: str) -> Problem:
    return Problem("", line)


def _publish(client: Client, found: Bundle, entry: Entry, visibility: str) -> None:
    # The catalog refuses other bytes than the digest the bundle lists, before it keeps any.
    if entry.kind == "images":
        route, params = "/images", {"reference": entry.key, "digest": entry.digest}
        kind = "application/x-tar"
    else:
        route, params = "/packages", {"visibility": visibility, "digest": entry.digest}
        kind = "application/octet-stream"
    with found.open(entry) as body:
        answer = client.json("POST", route, params=params, data=body,
                             headers={"Content-Type": kind})  # fmt: skip
    if answer["digest"] != entry.digest:
        raise click.ClickException(
            f"{entry.key}: the catalog recorded {answer['digest']}, not the bundle's {entry.digest}"
        )


def _trusted(client: Client, given: tuple[str, ...]) -> list[str]:
    if given:
        return [trusted_key(text) for text in given]
    keys = [item["public_key"] for item in client.json("GET", "/bundle-keys")["items"]]
    if not keys:
        raise click.ClickException(
            "no key to check the bundle's signature with: give --trust PUBKEY, or have an admin "
            "register one (catalogctl bundle trust KEY.pub --name NAME)"
        )
    return keys


@bundle.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--trust",
    multiple=True,
    metavar="PUBKEY",
    help="A public key (base64, or a .pub file) the bundle may be signed with; "
    "default: the keys registered in the catalog.",
)
@click.option("--public", is_flag=True, help="Publish the packages public (admin only).")
@connection_options
def import_command(source: Path, trust: tuple[str, ...], public: bool) -> None:
    """Publish a bundle's packages and images here, keeping their digests; checked whole first."""
    client = api()
    found = read_bundle(source, _trusted(client, trust))
    publish, skip = plan_import(client, found)
    for entry in skip:
        click.echo(f"{entry.key}: here already (skipped)")
    for entry in publish:
        _publish(client, found, entry, "public" if public else "private")
        click.echo(
            f"{entry.key}: {'stored' if entry.kind == 'images' else 'published'} ({entry.digest})"
        )
    click.echo(
        f"{source}: {len(publish)} published, {len(skip)} here already (signed by {found.signer})"
    )


@bundle.command("trust")
@click.argument("key")
@click.option("--name", required=True, help="Who the key belongs to, for people.")
@connection_options
def trust_command(key: str, name: str) -> None:
    """Trust a public key (base64, or a .pub file) to sign the bundles imported here (admin)."""
    answer = api().json("POST", "/bundle-keys", json={"name": name, "public_key": trusted_key(key)})
    click.echo(f"trusted {answer['public_key']} ({answer['name']}, {answer['id']})")
