"""Benchmark (issue #12): what rendering in a child process costs per deployed container.

A deployment of N containers (1, 4, 10: one app, N services) renders what a typical
package asks for: one output, per service a templated command and three environment
values, and a 2 KB config file with a loop. Each is measured three ways:

- in the worker (the render functions called here: the floor, no isolation);
- in the child as a deployment meets it: between two deployments of one worker process
  lies their engine work (create, start, readiness: at least CATALOG_MIN_RUNNING_SECONDS),
  during which the spare child started for the next one gets ready - a pause of
  --pause seconds (default 0.3) stands in for it, untimed;
- cold: the first deployment of a worker process (no spare yet), which waits for the
  child's interpreter and Jinja import.

The target is the deployment's wall time spent rendering in the child, per container:
at most 50 ms for every N. The CPU the child costs (its start and its renders, counted
from this process's children) is printed beside it.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from packages import render, render_process  # noqa: E402
from packages.render import (  # noqa: E402
    in_process,
    render_file,
    render_outputs,
    render_service,
    template_context,
)
from packages.render_process import RenderLimits, RenderProcess  # noqa: E402

TARGET_MS_PER_CONTAINER = 50.0
SIZES = (1, 4, 10)
CONFIG = (
    "# {{ app.name }} in {{ app.env }}\n"
    "listen = 0.0.0.0:{{ params.port }}\n"
    "{% for peer in params.peers %}peer.{{ loop.index }} = {{ peer }}:{{ params.port }}\n"
    "{% endfor %}"
    "database = {{ bindings.db.outputs.url | default('sqlite://') }}\n"
    + "".join(f"option_{i} = {{{{ settings.site_name | lower }}}}-{i}\n" for i in range(60))
).encode()


def service(index: int) -> dict:
    return {
        "image": "registry.example/app:1.0",
        "command": ["serve", "--name", "{{ app.name }}-{{ services.s0.hostname }}", f"-i{index}"],
        "environment": {
            "SITE": "{{ settings.site_name }}",
            "PEERS": "{{ params.peers | join(',') }}",
            "PORT": "{{ params.port }}",
            "PLAIN": "no template",
        },
        "files": {"/etc/app.conf": "files/app.conf.j2"},
    }


def context(size: int) -> dict:
    return template_context(
        params={"port": 8080, "peers": [f"peer-{i}" for i in range(8)]},
        settings={"site_name": "Demo Site"},
        bindings={},
        services={f"s{i}": {"hostname": f"app-s{i}"} for i in range(size)},
        app={"name": "app", "env": "bench"},
    )


def render_deployment(renderer, size: int) -> None:
    """What `workers.deploy.prepare` renders for one app of `size` services."""
    render_outputs({"url": "http://{{ services.s0.hostname }}:{{ params.port }}/"}, renderer)
    for index in range(size):
        render_service(f"s{index}", service(index), renderer)
        render_file(f"s{index}", "/etc/app.conf", "files/app.conf.j2", CONFIG, renderer)


def in_worker_ms(size: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        render.clear_compiled()  # each child compiles afresh: so does the floor
        started = time.perf_counter()
        render_deployment(in_process(context(size)), size)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000 / size


def in_child_ms(size: int, rounds: int, pause: float) -> tuple[float, float]:
    """Median and worst wall ms per container of a deployment rendered in its child."""
    times = []
    for _ in range(rounds):
        time.sleep(pause)  # the previous deployment's engine work: the spare gets ready
        started = time.perf_counter()
        with RenderProcess(RenderLimits()) as child:
            render_deployment(child.bind(context(size)), size)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000 / size, max(times) * 1000 / size


def cold_ms(size: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        render_process._SPARE.discard()  # a worker process's first deployment
        started = time.perf_counter()
        with RenderProcess(RenderLimits()) as child:
            render_deployment(child.bind(context(size)), size)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000 / size


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--pause", type=float, default=0.3)
    args = parser.parse_args()
    failed = False
    for size in SIZES:
        floor = in_worker_ms(size, args.rounds)
        cpu_before = children_cpu()
        median, worst = in_child_ms(size, args.rounds, args.pause)
        render_process._SPARE.discard()  # its CPU is counted once it has been waited for
        cpu = (children_cpu() - cpu_before) * 1000 / args.rounds / size
        cold = cold_ms(size, max(3, args.rounds // 3))
        ok = median <= TARGET_MS_PER_CONTAINER
        failed |= not ok
        print(
            f"render in child, {size:>2} containers/deploy: {median:.1f} ms per container "
            f"(worst {worst:.1f}; target <= {TARGET_MS_PER_CONTAINER:.0f} ms) "
            f"{'ok' if ok else 'MISSED'}; in the worker itself {floor:.1f} ms; child CPU "
            f"{cpu:.1f} ms per container; cold (first deploy of a process) {cold:.1f} ms"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
