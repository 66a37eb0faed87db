"""Limits applied when reading a package; every one is configurable."""

from __future__ import annotations

from dataclasses import dataclass

from packages.imageref import DEFAULT_POLICY, RegistryPolicy

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Limits:
    """Bounds on an archive and its manifest. Exceeding one is an `ArchiveLimitError`."""

    max_archive_bytes: int = 64 * MiB  # the compressed archive as uploaded
    max_unpacked_bytes: int = 256 * MiB  # all members together, uncompressed
    max_member_bytes: int = 128 * MiB  # any one member, uncompressed
    max_members: int = 2000  # files and directories
    max_ratio: float = 200.0  # uncompressed / compressed, for members above ratio_floor
    ratio_floor: int = 1 * MiB  # smaller members may compress as well as they like
    max_name_length: int = 255  # bytes of a member's path
    max_name_depth: int = 16  # path segments
    max_manifest_bytes: int = 256 * KiB
    max_yaml_depth: int = 32  # nesting of mappings and sequences
    max_yaml_aliases: int = 64  # alias nodes (*ref) in the manifest
    max_yaml_nodes: int = 50_000  # scalars, mappings and sequences in the manifest
    # Bundled image tarballs (`docker save` output under images/), checked before loading.
    max_image_members: int = 1024  # files and directories of one image tarball
    max_image_layers: int = 127  # layers of one image: Docker's own limit
    max_image_json_bytes: int = 1 * MiB  # manifest.json, and each image config
    max_layer_members: int = 200_000  # entries of one layer
    max_layer_unpacked_bytes: int = 2048 * MiB  # a gzip-compressed layer, decompressed
    # Hard links inside layers (common in Debian and busybox root filesystems). Refused by
    # default; when allowed, only to a regular file earlier in the same layer.
    allow_layer_hardlinks: bool = True
    # What one package may ask of an engine that other tenants share (see packages.bounds).
    max_services: int = 32  # services of one package
    max_published_ports: int = 32  # published ports over all its services
    max_service_files: int = 64  # `files:` targets of one service
    max_package_files: int = 256  # `files:` targets over all its services
    max_files_bytes: int = 256 * MiB  # bytes every target together receives (fan-out counted)
    # The registries service images may come from (CATALOG_REGISTRIES; packages.imageref).
    registries: RegistryPolicy = DEFAULT_POLICY


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class TimeBounds:
    """Upper bounds, in seconds, on the durations a manifest may give (see packages.bounds)."""

    healthcheck_interval: float = 300.0  # also each probe's timeout
    healthcheck_start_period: float = 600.0
    readiness_window: float = 900.0  # start period + retries x (interval + timeout)
    stop_grace_period: float = 300.0
    action_timeout: float = 600.0
    action_timeout_default: float = 60.0  # when an action gives none


TIME_BOUNDS = TimeBounds()

# An image carried in by an offline bundle (a pulled image, saved): its layers may be larger
# than a package's members.
OFFLINE_IMAGE_LIMITS = Limits(max_member_bytes=8192 * MiB, max_image_members=4096)
