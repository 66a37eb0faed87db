"""Benchmark (issue 14): every file of the Compose corpus imports in < 100 ms (p95, per file).

Each file of tests/corpus/compose-awesome is imported (read, checked against the Compose
Specification's schema, converted) --repeats times, and each import that makes a package is
also written and validated as an upload would be (`write_package`); refused files are timed
to their refusal. The Murano corpus is timed the same way and reported (no target).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from packages.errors import PackageError  # noqa: E402
from packages.importers import write_package  # noqa: E402
from packages.importers.compose import import_compose  # noqa: E402
from packages.importers.murano import import_murano  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"
TARGET_P95_MS = 100.0


def timed(source: Path, importer, workdir: Path, n: int) -> tuple[list[float], str]:
    times, outcome = [], ""
    for i in range(n):
        start = time.perf_counter()
        try:
            write_package(importer(source), workdir / f"{source.parent.name}-{source.name}-{i}")
            outcome = "imported"
        except PackageError:
            outcome = "refused"
        times.append((time.perf_counter() - start) * 1000)
    return times, outcome


def report(label: str, sources: list[Path], importer, workdir: Path, n: int) -> float:
    per_file = []
    outcomes: dict[str, int] = {}
    for source in sources:
        times, outcome = timed(source, importer, workdir, n)
        per_file.extend(times)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    per_file.sort()
    p95 = per_file[max(0, int(len(per_file) * 0.95) - 1)]
    counts = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    print(f"{label}: {len(sources)} files ({counts}), {len(per_file)} imports: "
          f"p50 {statistics.median(per_file):.1f} ms, p95 {p95:.1f} ms, "
          f"max {per_file[-1]:.1f} ms")  # fmt: skip
    return p95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    compose = sorted(p for p in (CORPUS / "compose-awesome").iterdir() if p.is_dir())
    murano = sorted((CORPUS / "murano-docker-apps" / "Applications").glob("*/package"))
    with tempfile.TemporaryDirectory(prefix="bench-import-") as workdir:
        p95 = report("compose corpus", compose, import_compose, Path(workdir), args.repeats)
        report("murano corpus", murano, import_murano, Path(workdir), args.repeats)
    met = p95 < TARGET_P95_MS
    print(f"target: compose import p95 < {TARGET_P95_MS:.0f} ms per file: "
          f"{'met' if met else 'MISSED'} ({p95:.1f} ms)")  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
