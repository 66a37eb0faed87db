"""The README's walkthrough as data: its commands and the output each is shown with.

Between `<!-- walkthrough` and `<!-- end of walkthrough -->`, every ```console block holds
commands (`$ ` lines) each followed by its output. The output matches like a doctest with
ELLIPSIS: `...` stands for any text, across lines too; trailing spaces do not count. A
command shown with an `Error:` line must fail; every other one must succeed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

START = "<!-- walkthrough"
END = "<!-- end of walkthrough -->"
FENCE = re.compile(r"^```console\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Step:
    command: str
    shown: str  # the output as the README shows it

    @property
    def fails(self) -> bool:
        return any(line.startswith("Error:") for line in self.shown.splitlines())

    def matches(self, output: str) -> bool:
        return output_pattern(self.shown).fullmatch(normalized(output)) is not None


def normalized(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def output_pattern(shown: str) -> re.Pattern:
    parts = normalized(shown).split("...")
    return re.compile(r"[\s\S]*?".join(re.escape(part) for part in parts))


def steps(readme: Path) -> list[Step]:
    text = readme.read_text()
    section = text[text.index(START) : text.index(END)]
    found: list[Step] = []
    for block in FENCE.findall(section):
        command, shown = None, []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    found.append(Step(command, "\n".join(shown)))
                command, shown = line[2:], []
            else:
                shown.append(line)
        if command is not None:
            found.append(Step(command, "\n".join(shown)))
    return found
