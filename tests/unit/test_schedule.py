"""What `catalogctl beat` runs, how often, and on which queue."""

from __future__ import annotations

from catalog import config
from catalog.queue import RESYNC_TASK, host_queue, maintenance_queue, make_celery


def schedule(**environ: str) -> dict[str, dict]:
    settings = config.load({"CATALOG_HOME": "/nonexistent", **environ})
    return make_celery(settings).conf.beat_schedule


def test_beat_resyncs_on_the_queue_every_worker_consumes():
    assert schedule(CATALOG_TASK_QUEUE="cat", CATALOG_RESYNC_SECONDS="4") == {
        "resync": {
            "task": RESYNC_TASK,
            "schedule": 4.0,
            "options": {"queue": "cat.maintenance", "expires": 4.0},
        }
    }


def test_each_host_has_a_queue_of_its_own_and_the_default_engine_the_base_one():
    assert host_queue("cat", None) == "cat"
    assert host_queue("cat", "east") == "cat.host.east"
    assert maintenance_queue("cat") not in {host_queue("cat", None), host_queue("cat", "x")}
