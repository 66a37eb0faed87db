"""`catalogctl category`: the admin-managed list of package categories."""

from __future__ import annotations

import click

from catalogctl.client import path
from catalogctl.context import api, api_options, confirm, yes_option
from catalogctl.output import done, show_list


@click.group()
def category() -> None:
    """Package categories (created and deleted by admins)."""


@category.command("list")
@api_options
def list_command() -> None:
    """Every category."""
    show_list(api().json("GET", "/categories")["items"], (("NAME", "name"), ("TITLE", "title")))


@category.command("create")
@click.argument("name")
@click.option("--title", default="", help="What people read, e.g. 'Databases'.")
@api_options
def create_command(name: str, title: str) -> None:
    """Create a category (admin)."""
    created = api().json("POST", "/categories", json={"name": name, "title": title})
    done(f"created category {created['name']}", created)


@category.command("delete")
@click.argument("name")
@yes_option
@api_options
def delete_command(name: str, yes: bool) -> None:
    """Delete a category (admin); its packages lose it."""
    confirm(f"Delete category {name}", yes)
    api().json("DELETE", path("categories", name))
    done(f"deleted category {name}")
