"""`catalogctl completion SHELL`: the script that teaches a shell to complete catalogctl."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_CATALOGCTL_COMPLETE"


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash:  eval "$(catalogctl completion bash)"       (e.g. in ~/.bashrc)
    zsh:   eval "$(catalogctl completion zsh)"        (e.g. in ~/.zshrc)
    fish:  catalogctl completion fish > ~/.config/fish/completions/catalogctl.fish
    """
    root = click.get_current_context().find_root()
    complete = get_completion_class(shell)
    assert complete is not None  # click completes each of SHELLS
    script = complete(root.command, {}, "catalogctl", COMPLETE_VAR)
    click.echo(script.source())
