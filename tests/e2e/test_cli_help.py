"""Every command has help text; shell completion works; the config file is private."""

from __future__ import annotations

import os
import stat
import subprocess

import click
import pytest
import yaml

from catalogctl.main import cli, main
from tests.e2e.conftest import BIN


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += command_paths(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


COMMANDS = command_paths(cli)


def test_the_command_tree_has_every_group_the_api_needs():
    names = {" ".join(p) for p in COMMANDS}
    for expected in (
        "package publish", "package list", "package show", "package versions", "package update",
        "package yank", "package delete", "package download", "package logo",
        "category list", "category create", "category delete",
        "env create", "env list", "env show", "env update", "env delete", "env diff",
        "env snapshots",
        "app add", "app list", "app show", "app update", "app remove", "app endpoint",
        "template create", "template list", "template show", "template delete", "template use",
        "deploy", "deployment list", "deployment show", "deployment cancel",
        "events", "logs", "action run", "action show", "audit list",
        "webhook add", "webhook list", "webhook deliveries", "webhook remove",
        "registry add", "registry list", "registry remove",
        "admin bootstrap", "admin tenant create", "admin tenant list", "admin token create",
        "admin token list", "admin token revoke", "admin health", "admin metrics",
        "admin host add", "admin host list", "admin host update", "admin host remove",
        "login", "profile list", "profile use", "profile delete",
        "up", "serve", "worker", "beat", "tracker", "db upgrade", "spec", "completion",
    ):  # fmt: skip
        assert expected in names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "catalogctl")
def test_every_command_has_help(path, capsys):
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: catalogctl {' '.join(path)}".rstrip())
    description = out.split("\n\n")[1].strip()
    assert len(description) > 10, out


def test_completion_scripts_for_each_shell():
    env = {**os.environ, "_CATALOGCTL_COMPLETE": "bash_source"}
    builtin = subprocess.run(
        [BIN / "catalogctl"], env=env, capture_output=True, text=True, timeout=30, check=True
    ).stdout
    helper = subprocess.run(
        [BIN / "catalogctl", "completion", "bash"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert helper.strip() == builtin.strip()
    assert "_catalogctl_completion" in helper
    for shell, marker in (("zsh", "compdef"), ("fish", "complete --no-files --command catalogctl")):
        out = subprocess.run(
            [BIN / "catalogctl", "completion", shell],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
        assert marker in out


def test_bash_completion_completes_commands_and_options():
    def complete(*words: str) -> list[str]:
        env = {
            **os.environ,
            "_CATALOGCTL_COMPLETE": "bash_complete",
            "COMP_WORDS": " ".join(("catalogctl", *words)),
            "COMP_CWORD": str(len(words)),
        }
        out = subprocess.run(
            [BIN / "catalogctl"], env=env, capture_output=True, text=True, timeout=30, check=True
        ).stdout
        return [line.split(",", 1)[1] for line in out.splitlines()]

    assert complete("dep") == ["deploy", "deployment"]
    assert "--from-revision" in complete("deploy", "demo", "--")
    assert complete("-o", "y") == ["yaml"]


def test_login_refuses_a_bad_address_in_one_line_and_saves_nothing(tmp_path, capsys, monkeypatch):
    config = tmp_path / "conf" / "config.yaml"
    monkeypatch.setenv("CATALOGCTL_CONFIG", str(config))
    code = main(["login", "--url", "http://127.0.0.1:9", "--token", "cat_x"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "http://127.0.0.1:9" in err
    assert not config.exists()


def test_profiles_live_in_a_private_file_and_can_be_switched(tmp_path, capsys, monkeypatch):
    from catalogctl import config as cli_config

    path = tmp_path / "xdg" / "catalogctl" / "config.yaml"
    monkeypatch.delenv("CATALOGCTL_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert cli_config.config_path() == path
    cfg = cli_config.load()
    cfg.profiles["a"] = cli_config.Profile("http://a:1", "cat_a")
    cfg.profiles["b"] = cli_config.Profile("http://b:2", "cat_bbbbbbbbbbbbbbbbbbbbbb")
    cfg.current = "a"
    cfg.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    assert main(["profile", "use", "b"]) == 0
    assert yaml.safe_load(path.read_text())["current"] == "b"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    capsys.readouterr()
    assert main(["profile", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:2] == ["a", "http://a:1"]
    assert lines[2].split()[:3] == ["*", "b", "http://b:2"]
    assert "cat_bbbbbbbbbbbbbbbbbbbbbb" not in "\n".join(lines)  # tokens are masked

    assert main(["profile", "use", "nope"]) == 1
    assert "no profile 'nope'" in capsys.readouterr().err
    # Without a terminal, a destructive command refuses unless --yes.
    assert main(["profile", "delete", "a"]) == 1
    assert "pass --yes" in capsys.readouterr().err
    assert main(["profile", "delete", "a", "--yes"]) == 0
    assert set(yaml.safe_load(path.read_text())["profiles"]) == {"b"}


def test_where_the_address_and_token_come_from(tmp_path, monkeypatch):
    from catalogctl import config as cli_config
    from catalogctl.context import Options, resolve

    monkeypatch.setenv("CATALOGCTL_CONFIG", str(tmp_path / "c.yaml"))
    for name in ("CATALOG_URL", "CATALOG_TOKEN", "CATALOG_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    cfg = cli_config.load()
    cfg.profiles = {
        "cur": cli_config.Profile("http://cur:1", "cat_cur"),
        "other": cli_config.Profile("http://other:2", "cat_other"),
    }
    cfg.current = "cur"
    cfg.save()

    def resolved(**options):
        with click.Context(cli, obj=Options(**options)):
            return resolve()

    assert resolved() == ("http://cur:1", "cat_cur", "cur")
    assert resolved(profile="other") == ("http://other:2", "cat_other", "other")
    monkeypatch.setenv("CATALOG_URL", "http://env:3")
    monkeypatch.setenv("CATALOG_TOKEN", "cat_env")
    assert resolved() == ("http://env:3", "cat_env", None)
    assert resolved(profile="other") == ("http://other:2", "cat_other", "other")
    assert resolved(url="http://flag:4", token="cat_flag") == ("http://flag:4", "cat_flag", None)
    monkeypatch.delenv("CATALOG_URL")
    monkeypatch.delenv("CATALOG_TOKEN")
    # A profile's token never goes to another address.
    assert resolved(url="http://elsewhere:5") == ("http://elsewhere:5", None, None)
