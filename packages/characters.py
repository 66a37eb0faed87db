"""Characters refused in a package's text: controls (NUL first) that engines and databases
cut or refuse, and bidirectional controls that make a name read as another."""

from __future__ import annotations

import unicodedata

# The explicit bidirectional formatting characters (Unicode UAX #9): embeddings and
# overrides U+202A-202E, isolates U+2066-2069, and the marks U+200E, U+200F and U+061C.
# In a name or a file name they reorder what a reviewer reads ("Trojan Source").
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f"
    + "".join(map(chr, range(0x202A, 0x202F)))
    + "".join(map(chr, range(0x2066, 0x206A)))
)
# Line breaks and tabs belong in multi-line text (a PEM key in a variable, a description).
TEXT_WHITESPACE = frozenset("\t\n\r")


def printable(text: str) -> str:
    """`text` with unprintable characters (controls, bidi controls) escaped, safe to put in a
    message or a log."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def codepoint(character: str) -> str:
    return f"U+{ord(character):04X}"


def control_problem(text: str, *, allow: frozenset[str] = TEXT_WHITESPACE) -> str | None:
    """Why `text` may not be stored or passed to an engine (a NUL, a control), or None."""
    for character in text:
        if character == "\0":
            return "contains a NUL character (U+0000)"
        if unicodedata.category(character) == "Cc" and character not in allow:
            return f"contains the control character {codepoint(character)}"
    return None


def bidi_problem(text: str) -> str | None:
    """Why `text` may not name anything (a bidirectional control), or None."""
    for character in text:
        if character in BIDI_CONTROLS:
            return (
                f"contains the bidirectional control character {codepoint(character)}, "
                "which makes text display in another order than it reads"
            )
    return None


def text_problem(text: str, *, allow: frozenset[str] = TEXT_WHITESPACE) -> str | None:
    """Either problem of `text`, the control first."""
    return control_problem(text, allow=allow) or bidi_problem(text)
