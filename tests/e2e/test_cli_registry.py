"""`catalogctl registry` against a live API: credentials added with the password from standard
input (never an argument), listed without it, removed; a publisher for its own tenant, an
admin for the tenant it names."""

from __future__ import annotations

PASSWORD = "registry-pa55word"


def test_add_list_and_remove_registry_credentials(cli, tmp_path):
    cli("admin", "tenant", "create", "acme")
    publisher = cli("admin", "token", "create", "--tenant", "acme", "--role", "publisher", "-q")
    as_acme = {"CATALOG_TOKEN": publisher.stdout.strip()}

    added = cli("registry", "add", "GHCR.io", "-u", "acme-bot", "--password-stdin",
                stdin=PASSWORD + "\n", **as_acme)  # fmt: skip
    by_admin = cli.json("registry", "add", "quay.io", "-u", "ops", "--password-stdin",
                        "--tenant", "acme", stdin=PASSWORD)  # fmt: skip

    assert added.stdout.startswith("added credentials for ghcr.io (")
    assert added.stdout.rstrip().endswith("of tenant acme")
    assert by_admin["tenant"] == "acme" and "password" not in by_admin
    listed = cli.json("registry", "list", **as_acme)
    assert [(r["server"], r["username"]) for r in listed] == [
        ("ghcr.io", "acme-bot"), ("quay.io", "ops"),
    ]  # fmt: skip
    table = cli("registry", "list", "--tenant", "acme").stdout
    assert table.split()[:5] == ["ID", "TENANT", "SERVER", "USERNAME", "CREATED"]
    # The password is never an argument, and is asked for only on a terminal.
    assert "No such option" in cli("registry", "add", "ghcr.io", "-u", "x", "--password",
                                   PASSWORD, code=2).stderr  # fmt: skip
    asked = cli("registry", "add", "ghcr.io", "-u", "x", code=2, stdin="")
    assert "pass --password-stdin" in asked.stderr
    empty = cli("registry", "add", "ghcr.io", "-u", "x", "--password-stdin", code=2, stdin="\n")
    assert "the password is empty" in empty.stderr
    taken = cli("registry", "add", "ghcr.io", "-u", "x", "--password-stdin", code=1,
                stdin=PASSWORD, **as_acme)  # fmt: skip
    assert taken.stderr.startswith("Error: 409 Conflict")

    for item in listed:
        cli("registry", "remove", item["id"], "--yes", **as_acme)
    assert cli.json("registry", "list", **as_acme) == []
    outputs = [added.stdout, added.stderr, table, (tmp_path / "api.log").read_text()]
    assert not [text for text in outputs if PASSWORD in text]
