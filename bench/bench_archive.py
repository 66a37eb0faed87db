"""Benchmark: validating a ~20 MB package archive of 1,000 members, time and peak memory."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from packages.archive import open_archive  # noqa: E402

MEMBERS = 1000
TOTAL_BYTES = 20 * 1024 * 1024
TARGET_SECONDS = 0.5
TARGET_PEAK_MB = 100
ROUNDS = 5

# A fresh interpreter validates the archive, so its peak is the validation's own. VmHWM is
# per process image; ru_maxrss (the fallback off Linux) would carry over this script's peak.
MEASURE = """
import resource, sys
sys.path.insert(0, sys.argv[2])
from packages.archive import open_archive


def peak_mb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


before = peak_mb()
with open_archive(sys.argv[1]) as archive:
    assert len(archive.names) == int(sys.argv[3])
print(before, peak_mb())
"""


def members() -> list[tuple[str, bytes]]:
    """Mostly incompressible data, as packages carrying images and binaries are."""
    size = TOTAL_BYTES // MEMBERS
    found = [("manifest.yaml", b"format: catalog/v1\nname: org.example.bench\n")]
    found += [(f"files/dir{n % 20}/member{n}.bin", os.urandom(size)) for n in range(MEMBERS - 1)]
    return found


def write_targz(path: Path, content: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as archive:
        for name, data in content:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def write_zip(path: Path, content: list[tuple[str, bytes]]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in content:
            archive.writestr(name, data)


def best_time(path: Path) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        open_archive(path).close()
        best = min(best, time.perf_counter() - started)
    return best


def peak_memory(path: Path) -> tuple[float, float]:
    """(baseline, peak) resident MB of a fresh interpreter that validates `path`."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), str(ROOT), str(MEMBERS)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def main() -> int:
    content = members()
    failed = False
    with tempfile.TemporaryDirectory() as scratch:
        for kind, write in (("tar.gz", write_targz), ("zip", write_zip)):
            path = Path(scratch, f"bench.{kind}")
            write(path, content)
            seconds = best_time(path)
            baseline, peak = peak_memory(path)
            size_mb = path.stat().st_size / 1e6
            print(
                f"archive validate {kind} {size_mb:.1f} MB {MEMBERS} members: "
                f"{seconds:.2f} s, peak {peak:.0f} MB (interpreter alone {baseline:.0f} MB) "
                f"(target < {TARGET_SECONDS} s, < {TARGET_PEAK_MB} MB)"
            )
            failed |= seconds >= TARGET_SECONDS or peak >= TARGET_PEAK_MB
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
