"""The service's settings: read once from CATALOG_* variables into a frozen, typed object."""

import dataclasses

import pytest

from catalog import config


def test_variables_are_read_to_their_types_and_paths_follow_the_home() -> None:
    settings = config.load(
        {
            "CATALOG_HOME": "/srv/catalog",
            "CATALOG_ALLOW_PULL": "off",
            "CATALOG_NETWORK_PREFIX": "/26",
            "CATALOG_LEASE_SECONDS": "7.5",
            "CATALOG_STREAMS_PER_TOKEN": "3",
        }
    )
    assert settings.allow_pull is False
    assert settings.network_prefix == 26
    assert settings.lease_seconds == 7.5
    assert settings.streams_per_token == 3
    assert settings.database_url == "sqlite:////srv/catalog/catalog.db"
    assert settings.blob_dir == "/srv/catalog/blobs"
    assert settings.secret_key_file == "/srv/catalog/secret.key"


def test_a_value_of_the_wrong_type_names_its_variable() -> None:
    with pytest.raises(ValueError, match="CATALOG_DB_POOL_SIZE='many'"):
        config.load({"CATALOG_DB_POOL_SIZE": "many"})


def test_settings_are_frozen_and_copies_are_checked() -> None:
    settings = config.load({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.task_queue = "other"  # type: ignore[misc]
    assert settings.replace(task_queue="other").task_queue == "other"
    with pytest.raises(ValueError, match="CATALOG_RENDER_MEMORY_MB"):
        settings.replace(render_memory_mb=1)


def test_an_unknown_override_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown settings: DATABASE_URI"):
        config.load({}, overrides={"DATABASE_URI": "sqlite://"})


def test_overrides_use_the_setting_names_and_round_trip() -> None:
    settings = config.load({}, overrides={"TASK_QUEUE": "q", "LOG_SHARE_BYTES": 5})
    assert (settings.task_queue, settings.log_share_bytes) == ("q", 5)
    assert config.load({}, overrides=settings.as_mapping()) == settings


def test_a_commands_options_become_the_process_settings(monkeypatch) -> None:
    monkeypatch.setattr(config, "_current", None)
    monkeypatch.setenv("CATALOG_TASK_QUEUE", "from-env")
    assert config.current().task_queue == "from-env"
    configured = config.configure({"HOST_NAME": "east"})
    assert config.current() is configured
    assert (configured.host_name, configured.task_queue) == ("east", "from-env")
