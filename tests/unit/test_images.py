"""Bundled image tarballs (D31): checked before any engine sees them; loaded under catalog names.

Every tarball here is crafted in memory: a `docker save` layout (manifest.json, configs, layer
tars) whose parts each test spoils in one way.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import pytest
import yaml
from docker.errors import ImageNotFound

from packages.errors import PackageError
from packages.image_load import loadable_tarball
from packages.images import (
    ImageError,
    ImageLimitError,
    UnsafeImageError,
    check_image_tarball,
    normalise_reference,
)
from packages.limits import DEFAULT_LIMITS, MiB
from packages.package import load_package
from tests import archives
from workers.deploy.images import catalog_image_name, ensure_bundled_image
from workers.engine import EngineError
from workers.engine.docker import DockerEngine

TARBALL = "images/app.tar"

# --- building tarballs ------------------------------------------------------------------------


@dataclass
class Entry:
    """One tar entry; `kind` is a tarfile type, `link` the link target."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    link: str = ""


def tar_of(entries: Iterable[Entry | tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            if isinstance(entry, tuple):
                entry = Entry(*entry)
            info = tarfile.TarInfo(entry.name)
            info.type, info.linkname, info.mtime = entry.kind, entry.link, 0
            if entry.kind == tarfile.DIRTYPE:
                info.mode = 0o755
                tar.addfile(info)
            elif entry.kind in (tarfile.REGTYPE, tarfile.AREGTYPE):
                info.size, info.mode = len(entry.data), 0o644
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                tar.addfile(info)
    return buffer.getvalue()


def rootfs(*extra: Entry) -> bytes:
    """A small root filesystem layer: directories, files and the symlinks real ones have."""
    return tar_of(
        [
            Entry("./", kind=tarfile.DIRTYPE),
            Entry("bin", kind=tarfile.DIRTYPE),
            Entry("bin/busybox", b"\x7fELF..."),
            Entry("bin/sh", kind=tarfile.SYMTYPE, link="busybox"),
            Entry("bin/ls", kind=tarfile.SYMTYPE, link="/bin/busybox"),
            Entry("etc", kind=tarfile.DIRTYPE),
            Entry("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
            Entry("usr/lib/os-release", kind=tarfile.SYMTYPE, link="../../etc/os-release"),
            Entry("etc/.wh.motd", b""),  # a whiteout: a regular file
            *extra,
        ]
    )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    """One image of a tarball: its layers (bytes) and tags; config derived unless given."""

    layers: list[bytes] = field(default_factory=lambda: [rootfs()])
    tags: list[str] | None = field(default_factory=lambda: ["app:1.0"])
    config: bytes | None = None

    def config_bytes(self) -> bytes:
        if self.config is not None:
            return self.config
        diff_ids = ["sha256:" + sha(layer) for layer in self.layers]
        doc = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
               "rootfs": {"type": "layers", "diff_ids": diff_ids}}  # fmt: skip
        return json.dumps(doc).encode()


def docker_save(
    *images: Image, manifest: object = None, extra: Iterable[Entry] = (), oci: bool = False
) -> bytes:
    """A tarball laid out as `docker save` writes it (`oci`: as Docker 25+ does, blobs/sha256)."""
    images = images or (Image(),)
    entries: dict[str, Entry] = {}
    listed = []
    for image in images:
        config = image.config_bytes()
        config_path = f"blobs/sha256/{sha(config)}" if oci else f"{sha(config)}.json"
        entries[config_path] = Entry(config_path, config)
        paths = []
        for layer in image.layers:
            if oci:
                path = f"blobs/sha256/{sha(layer)}"
            else:
                path = f"{sha(layer)}/layer.tar"
                entries[f"{sha(layer)}/VERSION"] = Entry(f"{sha(layer)}/VERSION", b"1.0")
            entries[path] = Entry(path, layer)
            paths.append(path)
        listed.append({"Config": config_path, "RepoTags": image.tags, "Layers": paths})
    document = listed if manifest is None else manifest
    entries["manifest.json"] = Entry("manifest.json", json.dumps(document).encode())
    entries["repositories"] = Entry("repositories", b'{"app": {"1.0": "x"}}')
    if oci:
        entries["oci-layout"] = Entry("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        index = {"schemaVersion": 2, "manifests": []}
        entries["index.json"] = Entry("index.json", json.dumps(index).encode())
    for entry in extra:
        entries[entry.name] = entry
    return tar_of(entries.values())


def check(data: bytes, limits=DEFAULT_LIMITS):
    return check_image_tarball(io.BytesIO(data), TARBALL, limits)


def refused(data: bytes, error: type[PackageError], *words: str, limits=DEFAULT_LIMITS) -> str:
    with pytest.raises(error) as caught:
        check(data, limits)
    problem = caught.value.problems[0]
    assert problem.path == TARBALL
    for word in words:
        assert word in problem.message, problem.message
    return problem.message


def members_of(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {
            info.name: tar.extractfile(info).read() for info in tar.getmembers() if info.isreg()
        }


# --- good tarballs ------------------------------------------------------------------------------


def test_a_docker_save_tarball_is_accepted_with_its_images_and_tags():
    tarball = check(docker_save())
    (image,) = tarball.images
    assert image.repo_tags == ("app:1.0",)
    assert image.layers == (f"{sha(rootfs())}/layer.tar",)
    assert image.config_digest == "sha256:" + sha(Image().config_bytes())
    assert tarball.select("app:1.0") is image
    assert tarball.select(None) is image  # the only image


def test_a_docker_25_tarball_with_blobs_and_index_json_is_checked_through_manifest_json():
    layers = [rootfs(), tar_of([Entry("app", kind=tarfile.DIRTYPE), ("app/run", b"go")])]
    tarball = check(docker_save(Image(layers=layers), oci=True))
    assert [p.split("/")[0] for p in tarball.images[0].layers] == ["blobs", "blobs"]


def test_a_gzip_compressed_layer_is_read_through():
    tarball = check(docker_save(Image(layers=[archives.gzip_bytes(rootfs())])))
    assert len(tarball.images[0].layers) == 1


def test_an_empty_layer_is_a_tar():
    check(docker_save(Image(layers=[bytes(1024), rootfs()])))


@pytest.mark.parametrize(
    ("wanted", "held"),
    [
        ("app", "app:latest"),
        ("app:latest", "docker.io/library/app:latest"),
        ("docker.io/library/nginx:1.25", "nginx:1.25"),
        ("registry.example.com:5000/team/app", "registry.example.com:5000/team/app:latest"),
    ],
)
def test_tags_match_with_docker_hub_defaults(wanted, held):
    assert check(docker_save(Image(tags=[held]))).select(wanted).repo_tags == (held,)


def test_normalise_reference_keeps_registry_ports_and_digests():
    assert normalise_reference("localhost:5000/app") == "localhost:5000/app:latest"
    assert normalise_reference("app@sha256:" + "a" * 64) == "app@sha256:" + "a" * 64


def test_the_image_is_picked_by_tag_among_several():
    other = Image(layers=[tar_of([("other", b"2")])], tags=["other:2"])
    tarball = check(docker_save(Image(), other))
    assert tarball.select("other:2").repo_tags == ("other:2",)
    assert tarball.select("app:1.0").repo_tags == ("app:1.0",)


# --- the tarball itself ---------------------------------------------------------------------------


def test_not_a_tar_is_refused():
    refused(b"this is not a tarball at all" * 40, ImageError, "not a tar archive")


def test_a_compressed_tarball_is_refused_with_the_reason():
    refused(gzip.compress(docker_save()), ImageError, "compressed (gzip)", "docker save")


def test_an_oci_layout_without_manifest_json_is_refused_clearly():
    index = {"schemaVersion": 2, "manifests": []}
    data = tar_of([("oci-layout", b"{}"), ("index.json", json.dumps(index).encode()),
                   Entry("blobs/", kind=tarfile.DIRTYPE)])  # fmt: skip
    refused(data, ImageError, "OCI image layout", "manifest.json", "docker save")


def test_a_tar_without_manifest_json_is_refused():
    refused(tar_of([("hello.txt", b"hi")]), ImageError, "manifest.json is missing")


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (Entry("evil", kind=tarfile.SYMTYPE, link="/etc/passwd"), ["'evil'", "symbolic link"]),
        (Entry("hard", kind=tarfile.LNKTYPE, link="manifest.json"), ["hard link"]),
        (Entry("dev", kind=tarfile.CHRTYPE), ["device"]),
        (Entry("fifo", kind=tarfile.FIFOTYPE), ["FIFO"]),
    ],
)
def test_links_and_devices_among_the_tarball_members_are_refused(entry, words):
    refused(docker_save(extra=[entry]), UnsafeImageError, *words)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../escape.json", ["path traversal"]),
        ("/abs.json", ["absolute path"]),
        ("a\\b.json", ["backslash"]),
    ],
)
def test_unsafe_member_names_are_refused(name, words):
    refused(docker_save(extra=[Entry(name, b"{}")]), UnsafeImageError, *words)


def test_duplicate_members_are_refused():
    data = docker_save(extra=[Entry("./manifest.json", b"[]")])
    refused(data, UnsafeImageError, "duplicate")


def test_too_many_members_are_refused():
    limits = replace(DEFAULT_LIMITS, max_image_members=5)
    extra = [Entry(f"junk/{i}", b"x") for i in range(10)]
    refused(docker_save(extra=extra), ImageLimitError, "more than 5 members", limits=limits)


# --- manifest.json and configs --------------------------------------------------------------------


def good_entry(**changes) -> list[dict]:
    config = Image().config_bytes()
    entry = {"Config": f"{sha(config)}.json", "RepoTags": ["app:1.0"],
             "Layers": [f"{sha(rootfs())}/layer.tar"]}  # fmt: skip
    entry.update(changes)
    return [entry]


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"Layers": ["../outside/layer.tar"]}, UnsafeImageError,
         ["Layers[0]", "points outside the tarball", "path traversal"]),
        ({"Layers": ["/etc/passwd"]}, UnsafeImageError, ["points outside", "absolute path"]),
        ({"Config": "../../etc/shadow"}, UnsafeImageError, ["Config", "points outside"]),
        ({"Layers": ["nothere/layer.tar"]}, ImageError, ["is not a file of the tarball"]),
        ({"Config": "missing.json"}, ImageError, ["Config 'missing.json'", "not a file"]),
        ({"Config": None}, ImageError, ["Config must be a path"]),
        ({"Config": "repositories"}, ImageError, ["'repositories'", "no rootfs.diff_ids"]),
        ({"Layers": "x"}, ImageError, ["Layers must be a list"]),
        ({"RepoTags": "app:1.0"}, ImageError, ["RepoTags must be a list"]),
        ({"LayerSources": {"sha256:x": {}}}, ImageError, ["foreign layers"]),
        ({"Layers": ["manifest.json"]}, ImageError, ["'manifest.json'", "not a tar archive"]),
    ],
)  # fmt: skip
def test_manifest_json_pointing_anywhere_but_its_own_members_is_refused(changes, error, words):
    refused(docker_save(manifest=good_entry(**changes)), error, *words)


@pytest.mark.parametrize(
    ("document", "words"),
    [({}, ["non-empty list"]), ([], ["non-empty list"]), (["x"], ["must be an object"])],
)
def test_manifest_json_must_be_a_list_of_images(document, words):
    refused(docker_save(manifest=document), ImageError, *words)


def test_manifest_json_that_is_not_json_is_refused():
    data = tar_of([("manifest.json", b"[{not json")])
    refused(data, ImageError, "manifest.json is not valid JSON")


def test_a_config_that_is_not_a_json_object_is_refused():
    refused(docker_save(Image(config=b"[1, 2]")), ImageError, "is not a JSON object")
    refused(docker_save(Image(config=b"\x00" * 600)), ImageError, "is not JSON")


def test_a_config_over_the_json_limit_is_refused():
    limits = replace(DEFAULT_LIMITS, max_image_json_bytes=100)
    refused(docker_save(), ImageLimitError, "bytes, limit 100", limits=limits)


def test_a_config_whose_diff_ids_disagree_with_the_layers_is_refused():
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": ["sha256:a", "sha256:b"]}})
    refused(docker_save(Image(config=config.encode())), ImageError, "lists 2 layers")


def test_more_layers_than_dockers_limit_are_refused():
    layers = [tar_of([(f"f{i}", str(i).encode())]) for i in range(128)]
    refused(docker_save(Image(layers=layers)), ImageLimitError, "128 layers, limit 127")


def test_exactly_dockers_limit_of_layers_is_accepted():
    layers = [tar_of([(f"f{i}", str(i).encode())]) for i in range(127)]
    assert len(check(docker_save(Image(layers=layers))).images[0].layers) == 127


# --- layers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (Entry("../../etc/cron.d/evil", b"* * * * * root sh"), ["path traversal"]),
        (Entry("usr/../../escape", b"x"), ["path traversal"]),
        (Entry("/etc/shadow", b"x"), ["absolute path"]),
        (Entry("dev/sda", kind=tarfile.BLKTYPE), ["device file"]),
        (Entry("dev/mem", kind=tarfile.CHRTYPE), ["device file"]),
        (Entry("run/pipe", kind=tarfile.FIFOTYPE), ["FIFO"]),
        (Entry("etc/up", kind=tarfile.SYMTYPE, link="../../../host"), ["escapes the root"]),
    ],
)
def test_layer_entries_that_could_escape_the_root_are_refused(entry, words):
    data = docker_save(Image(layers=[rootfs(entry)]))
    message = refused(data, UnsafeImageError, "layer", "/layer.tar", *words)
    assert "Layers[0]" in message


def test_a_traversal_in_a_gzip_layer_is_refused():
    layer = archives.gzip_bytes(rootfs(Entry("../x", b"x")))
    refused(docker_save(Image(layers=[layer])), UnsafeImageError, "path traversal")


def test_hard_links_within_a_layer_load_only_when_allowed():
    # Real root filesystems (busybox, Debian) hard-link files: allowed by default.
    allowed = DEFAULT_LIMITS
    good = rootfs(Entry("bin/ln", kind=tarfile.LNKTYPE, link="./bin/busybox"))
    check(docker_save(Image(layers=[good])), allowed)
    strict = replace(DEFAULT_LIMITS, allow_layer_hardlinks=False)
    refused(docker_save(Image(layers=[good])), UnsafeImageError, "hard link", limits=strict)
    for link in ("bin/missing", "../outside", "/bin/busybox"):
        bad = rootfs(Entry("bin/ln", kind=tarfile.LNKTYPE, link=link))
        refused(docker_save(Image(layers=[bad])), UnsafeImageError, "hard link", limits=allowed)


def test_a_layer_that_is_not_a_tar_is_refused():
    refused(docker_save(Image(layers=[b"just text, no tar"])), ImageError, "not a tar archive")


@pytest.mark.parametrize(
    ("compressed", "kind"),
    [(b"\xfd7zXZ\x00" + bytes(600), "xz"), (b"\x28\xb5\x2f\xfd" + bytes(600), "zstd")],
)
def test_layers_in_other_compressions_are_refused(compressed, kind):
    refused(docker_save(Image(layers=[compressed])), ImageError, f"compressed with {kind}")


def test_a_gzip_layer_bomb_is_stopped_at_its_limit():
    limits = replace(DEFAULT_LIMITS, max_layer_unpacked_bytes=1 * MiB)
    layer = archives.gzip_bytes(tar_of([("zeros", bytes(4 * MiB))]))
    refused(docker_save(Image(layers=[layer])), ImageLimitError, "decompresses to more than",
            limits=limits)  # fmt: skip


def test_a_layer_with_too_many_entries_is_refused():
    limits = replace(DEFAULT_LIMITS, max_layer_members=20)
    layer = tar_of([(f"f{i}", b"") for i in range(30)])
    refused(docker_save(Image(layers=[layer])), ImageLimitError, "more than 20 entries",
            limits=limits)  # fmt: skip


@pytest.mark.parametrize("cut", [700, 2048, 4000, 5512])
def test_a_truncated_layer_is_refused(cut):
    layer = tar_of([("big", bytes(5000))])[:cut]
    message = refused(docker_save(Image(layers=[layer])), ImageError, "layer")
    assert "truncated" in message or "end of data" in message


@pytest.mark.parametrize("keep", [1000, 4000])
def test_a_truncated_tarball_is_refused(keep):
    data = docker_save(extra=[Entry("zz-last", b"z" * 5000)])
    message = refused(data[: data.index(b"z" * 5000) + keep], ImageError)
    assert "truncated" in message or "end of data" in message


HIDDEN = archives.tar_member("../../etc/cron.d/evil", b"* * * * * root sh")


def bad_checksum(header_and_data: bytes) -> bytes:
    """The same member with its header's checksum broken: Python's tarfile stops before it."""
    damaged = bytearray(header_and_data)
    damaged[148:156] = b"0000000\0"
    return bytes(damaged)


def _pax_header_end(member: bytes) -> int:
    """Where the member's own ustar header starts (after a pax extended header, if any)."""
    info = tarfile.TarInfo.frombuf(member[:512], "utf-8", "surrogateescape")
    if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):
        return 512 + -(-info.size // 512) * 512
    return 0


def checksum_broken(member: bytes) -> bytes:
    start = _pax_header_end(member)
    return member[:start] + bad_checksum(member[start:])


# Ways to hide an entry from a reader that stops at the first zero block or bad header.
HIDING = {
    "after a zero block": lambda first: first + bytes(512) + HIDDEN + archives.tar_end(),
    "after a bad checksum": lambda first: (
        first + bad_checksum(archives.tar_member("pad", b"p")) + HIDDEN + archives.tar_end()
    ),
    "behind its own bad checksum": lambda first: (
        first + checksum_broken(HIDDEN) + archives.tar_end()
    ),
}


@pytest.mark.parametrize("hide", HIDING.values(), ids=HIDING.keys())
def test_an_entry_hidden_after_a_layers_end_is_refused(hide):
    layer = hide(archives.tar_member("bin/busybox", b"\x7fELF"))
    message = refused(docker_save(Image(layers=[layer])), UnsafeImageError, "layer")
    assert "after the end of the tar archive" in message


@pytest.mark.parametrize("hide", HIDING.values(), ids=HIDING.keys())
def test_an_entry_hidden_after_a_gzip_layers_end_is_refused(hide):
    layer = gzip.compress(hide(archives.tar_member("bin/busybox", b"\x7fELF")), mtime=0)
    refused(docker_save(Image(layers=[layer])), UnsafeImageError, "after the end of the tar")


@pytest.mark.parametrize("hide", HIDING.values(), ids=HIDING.keys())
def test_a_member_hidden_after_the_tarballs_end_is_refused(hide):
    sound = docker_save()
    members = sound.rstrip(b"\0")  # its last member, `repositories`, ends in "}"
    members += bytes(-len(members) % 512)
    data = hide(members)
    message = refused(data, UnsafeImageError)
    assert "after the end of the tar archive" in message


def test_zero_padding_after_the_end_of_a_layer_or_tarball_is_sound():
    layer = archives.tar_member("bin/busybox", b"\x7fELF") + bytes(20 * 512)
    assert check(docker_save(Image(layers=[layer])) + bytes(4096)).images


def test_a_bad_layer_not_listed_in_manifest_json_is_not_loaded_and_not_refused():
    stray = Entry("stray/layer.tar", rootfs(Entry("../x", b"x")))
    tarball = check(docker_save(extra=[stray]))
    assert "stray/layer.tar" not in tarball.images[0].layers


# --- tags -----------------------------------------------------------------------------------------


def test_a_tag_the_tarball_does_not_hold_is_refused_listing_what_it_holds():
    tarball = check(docker_save(Image(tags=["app:1.0", "app:latest"])))
    with pytest.raises(ImageError) as caught:
        tarball.select("app:2.0")
    assert caught.value.problems[0].path == TARBALL
    assert "no image tagged 'app:2.0' (it has: app:1.0, app:latest)" in str(caught.value)


def test_without_a_tag_a_tarball_of_several_images_is_ambiguous():
    tarball = check(docker_save(Image(), Image(layers=[tar_of([("o", b"")])], tags=["o:1"])))
    with pytest.raises(ImageError, match="holds 2 images: say which one with `tag`"):
        tarball.select(None)


def test_untagged_images_are_chosen_only_without_a_tag():
    tarball = check(docker_save(Image(tags=None)))
    assert tarball.select(None).repo_tags == ()
    with pytest.raises(ImageError, match="carry no tags"):
        tarball.select("app:1.0")


# --- the tarball given to the engine --------------------------------------------------------------


def test_the_loadable_tarball_holds_only_the_image_and_names_only_the_catalog_tag():
    other = Image(layers=[tar_of([("o", b"other")])], tags=["nginx:latest"])
    data = docker_save(Image(tags=["app:1.0", "nginx:1.25"]), other, oci=True)
    tarball = check(data)
    chosen = tarball.select("app:1.0")
    out = b"".join(loadable_tarball(io.BytesIO(data), tarball, chosen, "catalog.local/t/p:abc-123"))
    members = members_of(out)
    original = members_of(data)
    assert set(members) == {chosen.config, *chosen.layers, "manifest.json"}
    for name in (chosen.config, *chosen.layers):
        assert members[name] == original[name]
    assert json.loads(members["manifest.json"]) == [
        {"Config": chosen.config, "RepoTags": ["catalog.local/t/p:abc-123"],
         "Layers": list(chosen.layers)}
    ]  # fmt: skip
    assert len(out) % 512 == 0


def test_a_tarball_that_changed_since_it_was_checked_is_not_loaded():
    data = docker_save()
    tarball = check(data)
    changed = docker_save(Image(layers=[rootfs(Entry("more", b"x"))]))
    layer = tarball.images[0].layers[0]
    tarball = replace(tarball, sizes={**tarball.sizes, layer: 1})
    with pytest.raises(ImageError):
        b"".join(loadable_tarball(io.BytesIO(changed), tarball, tarball.images[0], "x"))
    with pytest.raises(ImageError, match="changed since it was checked"):
        b"".join(loadable_tarball(io.BytesIO(data), tarball, tarball.images[0], "x"))


# --- packages: checked on upload (D31) ------------------------------------------------------------


def package(image_tar: bytes, image: object = None, extra: Iterable[tuple[str, bytes]] = ()):
    doc = {
        "format": "catalog/v1", "name": "org.acme.app", "version": "1.0.0", "type": "application",
        "services": {"web": {"image": image or {"bundled": TARBALL, "tag": "app:1.0"}}},
    }  # fmt: skip
    members = [("manifest.yaml", yaml.safe_dump(doc).encode()), (TARBALL, image_tar), *extra]
    return io.BytesIO(archives.make_targz(members))


def test_a_package_with_a_sound_bundled_image_loads():
    loaded = load_package(package(docker_save()))
    assert TARBALL in loaded.names


def test_a_package_with_a_traversal_in_a_layer_is_refused_on_load():
    with pytest.raises(UnsafeImageError) as caught:
        load_package(package(docker_save(Image(layers=[rootfs(Entry("../x", b"x"))]))))
    (problem,) = caught.value.problems
    assert problem.path == TARBALL
    assert "path traversal" in problem.message
    assert caught.value.status == 400


def test_a_package_whose_service_asks_for_a_missing_tag_is_refused_naming_the_service():
    with pytest.raises(ImageError) as caught:
        load_package(package(docker_save(), {"bundled": TARBALL, "tag": "app:9"}))
    (problem,) = caught.value.problems
    assert problem.path == "services.web.image.tag"
    assert problem.message.startswith(f"{TARBALL} holds no image tagged 'app:9'")


def test_a_malformed_tarball_nobody_uses_is_refused_too():
    extra = [("images/spare.tar", b"not a tar" * 100)]
    with pytest.raises(ImageError) as caught:
        load_package(package(docker_save(), extra=extra))
    assert [p.path for p in caught.value.problems] == ["images/spare.tar"]


# --- loading into the engine: names, reuse, nothing loaded when refused ---------------------------

DIGEST = "sha256:" + "ab" * 32


def test_catalog_image_names_are_owned_by_the_catalog_and_valid_references():
    name = catalog_image_name("t1", "Org.Example_App", DIGEST, TARBALL, "app:1.0")
    repository, tag = name.rsplit(":", 1)
    assert repository == "catalog.local/t1/org.example_app"
    assert tag.startswith("ab" * 8 + "-") and len(tag) == 16 + 1 + 8
    assert catalog_image_name("t1", "org.x", DIGEST, TARBALL, None) != catalog_image_name(
        "t1", "org.x", DIGEST, TARBALL, "app:1.0"
    )
    assert catalog_image_name("t1", "org.x", DIGEST, TARBALL, None) != catalog_image_name(
        "t2", "org.x", DIGEST, TARBALL, None
    )
    assert catalog_image_name("T_1", "a-b", DIGEST, TARBALL, None).startswith(
        "catalog.local/t_1/a-b:"
    )
    assert "/a-b:" in catalog_image_name("t1", "-A+.B-", DIGEST, TARBALL, None)
    assert "/a.b:" in catalog_image_name("t1", "a.B", DIGEST, TARBALL, None)
    with pytest.raises(ValueError):
        catalog_image_name("t1", "org.x", "md5:00", TARBALL, None)


class FakeAPI:
    """The engine's image API: loads recorded, tags kept in a dict."""

    def __init__(self) -> None:
        self.tags: dict[str, str] = {}
        self.loads: list[bytes] = []

    def inspect_image(self, name: str) -> dict:
        if name not in self.tags:
            raise ImageNotFound(name)
        return {"Id": self.tags[name]}

    def load_image(self, body):
        data = b"".join(body)
        self.loads.append(data)
        (entry,) = json.loads(members_of(data)["manifest.json"])
        for tag in entry["RepoTags"]:
            self.tags[tag] = "sha256:" + entry["Config"].split(".")[0]
        return iter([{"stream": f"Loaded image: {t}\n"} for t in entry["RepoTags"]])


class FakeClient:
    def __init__(self) -> None:
        self.api = FakeAPI()


def ensure(client, data: bytes, tag: str | None = "app:1.0"):
    return ensure_bundled_image(
        DockerEngine(client), tenant_id="t1", package="org.acme.app", digest=DIGEST,
        image={"bundled": TARBALL, "tag": tag}, open_member=lambda name: io.BytesIO(data),
    )  # fmt: skip


def test_a_bundled_image_is_loaded_once_under_its_catalog_name_then_reused():
    client = FakeClient()
    data = docker_save(Image(tags=["nginx:latest", "app:1.0"]))
    first = ensure(client, data)
    second = ensure(client, data)
    assert first.loaded and not second.loaded
    assert first.image_id == second.image_id == check(data).images[0].config_digest
    assert len(client.api.loads) == 1
    assert list(client.api.tags) == [first.name]  # never nginx:latest, never app:1.0


def test_a_malformed_tarball_never_reaches_the_engine():
    client = FakeClient()
    with pytest.raises(UnsafeImageError):
        ensure(client, docker_save(Image(layers=[rootfs(Entry("/etc/shadow", b"x"))])))
    with pytest.raises(ImageError):
        ensure(client, docker_save(), tag="other:1")
    assert client.api.loads == []


def test_a_load_naming_anything_else_is_an_engine_error():
    client = FakeClient()
    client.api.load_image = lambda body: iter([{"stream": "Loaded image: nginx:latest\n"}])
    with pytest.raises(EngineError, match=r"expected only catalog\.local/"):
        ensure(client, docker_save())


def test_an_engine_load_error_is_reported():
    client = FakeClient()
    client.api.load_image = lambda body: iter([{"errorDetail": {"message": "no space"}}])
    with pytest.raises(EngineError, match=r"could not load images/app\.tar: no space"):
        ensure(client, docker_save())
