"""What `catalogctl beat` runs, and how often, from the settings."""

from __future__ import annotations

from catalog import config
from catalog.queue import PRUNE_IMAGES_TASK, RESYNC_TASK, make_celery


def schedule(**environ: str) -> dict[str, tuple[str, float]]:
    settings = config.load({"CATALOG_HOME": "/nonexistent", **environ})
    entries = make_celery(settings).conf.beat_schedule
    return {name: (entry["task"], entry["schedule"]) for name, entry in entries.items()}


def test_beat_resyncs_often_and_prunes_images_hourly_by_default():
    assert schedule() == {
        "resync": (RESYNC_TASK, 10.0),
        "prune-images": (PRUNE_IMAGES_TASK, 3600.0),
    }


def test_image_pruning_follows_its_setting_and_zero_turns_it_off():
    assert schedule(CATALOG_PRUNE_IMAGES_SECONDS="600")["prune-images"] == (
        PRUNE_IMAGES_TASK, 600.0,
    )  # fmt: skip
    assert "prune-images" not in schedule(CATALOG_PRUNE_IMAGES_SECONDS="0")
