"""`catalogctl` against a live API on PostgreSQL: login and profiles, packages, categories,
tenants and tokens, output formats, and failures as one clear line."""

from __future__ import annotations

import hashlib
import stat
import subprocess
from pathlib import Path

import yaml

from tests.conftest import EXAMPLES
from tests.e2e.conftest import BIN
from tests.e2e.packages import PNG, write_package


def complete(cli, *words: str) -> list[str]:
    """What bash completion offers for the last of `words`."""
    env = {
        "_CATALOGCTL_COMPLETE": "bash_complete",
        "COMP_WORDS": " ".join(("catalogctl", *words)),
        "COMP_CWORD": str(len(words)),
    }
    out = cli(**env).stdout
    assert "," in out, out
    return [line.split(",", 1)[1] for line in out.splitlines()]


def record(text: str) -> dict[str, str]:
    """The `label: value` lines a `show` command prints (up to the first blank line)."""
    head = text.split("\n\n", 1)[0]
    return dict((k, v.strip()) for k, _, v in (line.partition(":") for line in head.splitlines()))


def test_login_checks_the_token_and_saves_a_private_profile(cli, live_server, admin_token):
    bare = {"CATALOG_URL": "", "CATALOG_TOKEN": ""}  # only the profile from here on
    wrong = cli("login", "--profile", "prod", "--url", live_server, "--token", "cat_nope", code=1,
                **bare)  # fmt: skip
    assert wrong.stderr.startswith("Error: 401 Unauthorized")
    assert len(wrong.stderr.strip().splitlines()) == 1
    config = cli.env["CATALOGCTL_CONFIG"]

    done = cli("login", "--profile", "prod", "--url", live_server, "--token", admin_token, **bare)
    assert f"logged in to {live_server}; saved as profile prod (current)" in done.stdout
    path = Path(config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = yaml.safe_load(path.read_text())
    assert saved["current"] == "prod"
    assert saved["profiles"]["prod"] == {"url": live_server, "token": admin_token}

    # The saved profile is all the CLI needs; --profile picks one explicitly.
    assert cli("category", "list", **bare).stdout.startswith("NAME")
    assert (
        cli("--profile", "prod", "admin", "health", **bare)
        .stdout.strip()
        .endswith("ok (database ok)")
    )
    missing = cli("--profile", "staging", "category", "list", code=1, **bare)
    assert "no profile 'staging'" in missing.stderr
    assert "catalogctl login --profile staging" in missing.stderr


def test_publish_list_show_and_download_packages(cli, tmp_path):
    first = cli("package", "publish", str(EXAMPLES / "hello-web"), "--public")
    assert first.stdout.startswith("published org.example.hello-web 1.0.0 (sha256:")
    again = cli("package", "publish", str(EXAMPLES / "hello-web"), "--skip-existing")
    assert again.stdout.strip() == "org.example.hello-web 1.0.0 is published already (skipped)"
    both = cli.json("package", "publish", str(EXAMPLES / "kv-store"), str(EXAMPLES / "kv-front"))
    assert [(v["package"], v["version"]) for v in both] == [
        ("org.example.kvstore", "1.0.0"),
        ("org.example.kvfront", "1.0.0"),
    ]

    table = cli("package", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "VERSION", "TYPE", "VISIBILITY", "OWNER", "TITLE"]
    assert [line.split()[:4] for line in table[1:]] == [
        ["org.example.hello-web", "1.0.0", "application", "public"],
        ["org.example.kvfront", "1.0.0", "application", "private"],
        ["org.example.kvstore", "1.0.0", "application", "private"],
    ]
    found = cli.json("package", "list", "-q", "hello")
    assert [p["name"] for p in found] == ["org.example.hello-web"]
    tagged = cli.json("package", "list", "--tag", "data")
    assert [p["name"] for p in tagged] == ["org.example.kvstore"]
    # The format option works on the root command too, and YAML says the same as JSON.
    assert yaml.safe_load(cli("-o", "yaml", "package", "list", "--tag", "data").stdout) == tagged

    shown = record(cli("package", "show", "org.example.hello-web").stdout)
    assert (shown["title"], shown["latest version"], shown["owner"]) == (
        "Hello Web",
        "1.0.0",
        "admin",
    )
    version = cli("package", "show", "org.example.hello-web", "1.0.0").stdout
    assert record(version)["services"] == "web"
    assert "greeting   string  no        Hello from the catalog" in version
    versions = cli("package", "versions", "org.example.hello-web").stdout.splitlines()
    assert versions[1].split()[:2] == ["1.0.0", "no"]

    # Shell completion asks the API for names.
    cli("env", "create", "shop")
    assert complete(cli, "package", "show", "org.example.h") == ["org.example.hello-web"]
    assert complete(cli, "app", "add", "sh") == ["shop"]
    assert complete(cli, "deploy", "") == ["shop"]

    target = tmp_path / "hello.tar.gz"
    cli("package", "download", "org.example.hello-web", "1.0.0", "-f", str(target))
    digest = cli.json("package", "show", "org.example.hello-web", "1.0.0")["digest"]
    assert f"sha256:{hashlib.sha256(target.read_bytes()).hexdigest()}" == digest
    piped = subprocess.run(
        [BIN / "catalogctl", "package", "download", "org.example.hello-web", "1.0.0", "-f", "-"],
        env=cli.env, capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    assert piped.stdout == target.read_bytes()


def test_change_yank_logo_and_delete_a_package(cli, tmp_path):
    cli("category", "create", "web", "--title", "Web servers")
    cli("category", "create", "tools")
    assert [c["name"] for c in cli.json("category", "list")] == ["tools", "web"]
    one = write_package(tmp_path, "org.test.echo", "1.0.0", logo=True)
    two = write_package(tmp_path, "org.test.echo", "1.1.0")
    cli("package", "publish", str(one), "--category", "web")
    archive = tmp_path / "echo-1.1.0.tar.gz"
    cli("package", "build", str(two), "-o", str(archive))
    cli("package", "publish", str(archive))

    updated = cli.json("package", "update", "org.test.echo", "--title", "Echo!", "--tag", "a",
                       "--tag", "b", "--category", "tools", "--disable")  # fmt: skip
    assert (updated["title"], updated["tags"], updated["categories"], updated["enabled"]) == (
        "Echo!", ["a", "b"], ["tools"], False,
    )  # fmt: skip
    assert (
        cli("package", "update", "org.test.echo", code=2)
        .stderr.strip()
        .endswith("nothing to change: give at least one option")
    )

    cli("package", "yank", "org.test.echo", "1.1.0")
    assert cli.json("package", "show", "org.test.echo", "1.1.0")["yanked"] is True
    cli("package", "yank", "org.test.echo", "1.1.0", "--undo")
    assert cli.json("package", "show", "org.test.echo", "1.1.0")["yanked"] is False

    logo = tmp_path / "logo.png"
    cli("package", "logo", "org.test.echo", "-f", str(logo))
    assert logo.read_bytes() == PNG

    # Destructive: refused without a terminal unless --yes.
    refused = cli("package", "delete", "org.test.echo", "1.0.0", code=1)
    assert "pass --yes" in refused.stderr
    cli("package", "delete", "org.test.echo", "1.0.0", "--yes")
    assert [v["version"] for v in cli.json("package", "versions", "org.test.echo")] == ["1.1.0"]
    cli("package", "delete", "org.test.echo", "--yes")
    gone = cli("package", "show", "org.test.echo", code=1)
    assert gone.stderr.strip() == "Error: 404 Not Found: no package 'org.test.echo'"

    cli("category", "delete", "tools", code=1)
    cli("category", "delete", "tools", "--yes")
    assert [c["name"] for c in cli.json("category", "list")] == ["web"]


def test_download_verifies_the_digest_and_writes_nothing_when_the_bytes_do_not_match(
    cli, service_env, tmp_path
):
    """Issue 14: the archive received is hashed against the digest the API sent with it."""
    archive = tmp_path / "echo-1.0.0.tar.gz"
    cli("package", "build", str(write_package(tmp_path, "org.test.echo", "1.0.0")),
        "-o", str(archive))  # fmt: skip
    cli("package", "publish", str(archive))
    digest = cli.json("package", "show", "org.test.echo", "1.0.0")["digest"]

    good = tmp_path / "good.tar.gz"
    wrote = cli("package", "download", "org.test.echo", "1.0.0", "-f", str(good))
    assert good.read_bytes() == archive.read_bytes()
    assert wrote.stderr.strip() == f"wrote {good} ({good.stat().st_size} bytes, digest verified)"

    # One byte of the stored blob flipped: the API streams it under the recorded digest.
    hexdigest = digest.removeprefix("sha256:")
    blob = Path(service_env["CATALOG_BLOB_DIR"], "sha256", hexdigest[:2], hexdigest[2:4], hexdigest)
    damaged = bytearray(blob.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    blob.write_bytes(damaged)
    received = "sha256:" + hashlib.sha256(damaged).hexdigest()

    bad, kept = tmp_path / "bad.tar.gz", tmp_path / "kept.tar.gz"
    kept.write_bytes(b"an earlier download")
    for target in (bad, kept):
        failed = cli("package", "download", "org.test.echo", "1.0.0", "-f", str(target), code=1)
        assert failed.stderr.splitlines() == [
            f"Error: org.test.echo 1.0.0: the archive received does not match its digest "
            f"(expected {digest}, received {received}); nothing was written"
        ]
    assert not bad.exists()
    assert kept.read_bytes() == b"an earlier download"
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]
    # To standard output too: nothing of it is written.
    piped = cli("package", "download", "org.test.echo", "1.0.0", "-f", "-", code=1)
    assert piped.stdout == ""
    assert "does not match its digest" in piped.stderr


def test_tenants_and_tokens(cli, live_server):
    cli("admin", "tenant", "create", "acme")
    assert "acme" in [t["name"] for t in cli.json("admin", "tenant", "list")]
    shown = cli("admin", "token", "create", "--tenant", "acme", "--role", "publisher",
                "--description", "ci", "--expires-in", "30d").stdout  # fmt: skip
    assert "its secret, shown only now:" in shown
    secret = cli("admin", "token", "create", "--tenant", "acme", "--role", "deployer", "-q").stdout
    secret = secret.strip()
    assert secret.startswith("cat_")
    tokens = cli.json("admin", "token", "list")
    mine = [t for t in tokens if t["tenant"] == "acme"]
    assert sorted(t["role"] for t in mine) == ["deployer", "publisher"]
    assert all("token" not in t for t in tokens)

    as_acme = {"CATALOG_TOKEN": secret}
    assert cli("env", "list", **as_acme).stdout.startswith("NAME")
    forbidden = cli("admin", "tenant", "create", "other", code=1, **as_acme)
    assert forbidden.stderr.startswith("Error: 403 Forbidden")

    deployer = next(t for t in mine if t["role"] == "deployer")
    cli("admin", "token", "revoke", deployer["id"], "--yes")
    revoked = cli("env", "list", code=1, **as_acme)
    assert revoked.stderr.startswith("Error: 401 Unauthorized")

    assert cli("admin", "health").stdout.strip() == f"{live_server}: ok (database ok)"
    assert "# TYPE" in cli("admin", "metrics").stdout

    # The trail: the changes made above, and the writes refused, newest first.
    trail = cli.json("audit", "list", "--tenant", "acme")
    assert [e["action"] for e in trail if e["result"] == "ok"][:2] == [
        "token.revoke",
        "token.create",
    ]
    refused = cli.json("audit", "list", "--result", "forbidden")
    assert [(e["action"], e["tenant"]) for e in refused] == [("tenants.create_tenant", "acme")]
    table = cli("audit", "list", "--action", "tenant.*").stdout
    assert table.startswith("ID") and "tenant.create" in table and "token" not in table


def test_docker_hosts(cli):
    added = cli("admin", "host", "add", "east", "--public-host", "east.example.com")
    assert added.stdout.strip() == (
        "added host east; on it run `catalogctl worker --host-name east` and "
        "`catalogctl tracker --host-name east`"
    )
    cli("env", "create", "shop")
    assert cli.json("env", "show", "shop")["host"] == "east"
    assert "host:            east" in cli("env", "show", "shop").stdout
    listed = cli("admin", "host", "list").stdout.splitlines()
    assert listed[1].split() == ["east", "east.example.com", "-", "yes", "1"]
    cli("admin", "host", "update", "east", "--disable")
    assert cli.json("admin", "host", "list")[0]["enabled"] is False
    refused = cli("admin", "host", "remove", "east", "--yes", code=1)
    assert "runs 1 environment(s)" in refused.stderr
    cli("admin", "host", "add", "west", "--public-host", "west.example.com", "--disabled")
    assert cli("admin", "host", "remove", "west", "--yes").stdout.strip() == "removed host west"


def test_an_invalid_request_lists_each_problem_on_its_own_line(cli):
    result = cli("env", "create", "Not_A_Label", "--set", "x=1", code=1)
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Error: 400 Validation Failed: the request is invalid"
    assert lines[1].startswith("name: must be a DNS label")
    usage = cli("env", "create", "ok", "--set", "novalue", code=2)
    assert "'novalue' is not KEY=VALUE" in usage.stderr
    wrong_url = cli("--url", "nonsense", "env", "list", code=1)
    assert wrong_url.stderr.strip() == (
        "Error: 'nonsense' is not a catalog address like http://127.0.0.1:8000 "
        "(--url / CATALOG_URL)"
    )


def test_package_import_writes_publishes_and_refuses_without_a_traceback(cli, tmp_path):
    source = tmp_path / "compose.yaml"
    source.write_text(
        "services:\n  web:\n    image: nginx:1.25\n    ports: ['8080:80']\n"
        "    environment: ['GREETING=${GREETING:-hello}']\n  db:\n    image: postgres:16\n"
    )
    done = cli("package", "import", str(source), "-o", str(tmp_path / "web"),
               "--name", "org.acme.web", "--version", "1.2.0", "--publish")  # fmt: skip
    assert "services.web.ports[0]: host port 8080 dropped" in done.stdout
    assert "published org.acme.web 1.2.0 (sha256:" in done.stdout
    shown = cli.json("package", "show", "org.acme.web", "1.2.0")
    assert sorted(shown["manifest"]["services"]) == ["db", "web"]

    source.write_text("services:\n  web:\n    image: nginx\n    privileged: true\n    pid: host\n")
    refused = cli("package", "import", str(source), "-o", str(tmp_path / "bad"), code=1)
    assert refused.stderr.splitlines() == [
        "services.web.pid: pid (host) is not allowed: containers keep namespaces of their own",
        "services.web.privileged: privileged mode is not allowed",
    ]
    assert not (tmp_path / "bad").exists()
