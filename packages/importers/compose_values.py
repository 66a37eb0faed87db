"""Compose values made into catalog ones: `$` interpolation, ports, volumes, durations, sizes.

Interpolation follows the Compose Specification: `$$` is a dollar; `$VAR` and `${VAR}` a
variable; `${VAR:-default}` / `${VAR-default}` one with a default, `${VAR:?error}` /
`${VAR?error}` a required one, `${VAR:+other}` / `${VAR+other}` text used when it is set; a
default may itself hold variables. In a field the catalog renders (environment values,
command, entrypoint, user, healthcheck command) a variable becomes `{{ params.VAR }}` and the
text around it is escaped; elsewhere (image, ports, volume sources) it is resolved to its
default now, or reported unknown.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from packages.importers import is_secret_name, literal, param_ref, typed_parameter

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class ValueProblem(ValueError):
    """A value that cannot be converted; the caller names its path."""


# -- interpolation ----------------------------------------------------------------------------


@dataclass
class Variable:
    name: str
    operator: str = ""  # one of _OPERATORS, or "" for plain $VAR / ${VAR}
    word: list[Part] = field(default_factory=list)  # the default, error or alternative


Part = str | Variable


def parse(text: str) -> list[Part]:
    """`text` as literal strings and variables, in order."""
    return _parse(text, 0, nested=False)[0]


MAX_NESTING = 8  # ${A:-${B:-...}} defaults within defaults


def _parse(text: str, i: int, *, nested: bool, depth: int = 0) -> tuple[list[Part], int]:
    if depth > MAX_NESTING:
        raise ValueProblem(f"defaults nest more than {MAX_NESTING} deep")
    parts: list[Part] = []
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            parts.append("".join(buffer))
            buffer.clear()

    while i < len(text):
        char = text[i]
        if nested and char == "}":
            break
        if char != "$":
            buffer.append(char)
            i += 1
            continue
        if text.startswith("$$", i):
            buffer.append("$")
            i += 2
            continue
        if text.startswith("${", i):
            variable, i = _braced(text, i + 2, depth)
            flush()
            parts.append(variable)
            continue
        match = _NAME.match(text, i + 1)
        if match:
            flush()
            parts.append(Variable(match.group(0)))
            i = match.end()
            continue
        buffer.append("$")
        i += 1
    flush()
    return parts, i


def _braced(text: str, i: int, depth: int) -> tuple[Variable, int]:
    match = _NAME.match(text, i)
    if not match:
        raise ValueProblem(f"invalid interpolation at {text[i - 2 : i + 10]!r}")
    variable = Variable(match.group(0))
    i = match.end()
    for operator in _OPERATORS:
        if text.startswith(operator, i):
            variable.operator = operator
            variable.word, i = _parse(text, i + len(operator), nested=True, depth=depth + 1)
            break
    if not text.startswith("}", i):
        raise ValueProblem(f"unterminated ${{{variable.name}...}}: a closing }} is missing")
    return variable, i + 1


def static_text(parts: list[Part]) -> str | None:
    """The literal text of `parts`, or None when they hold a variable."""
    texts = [p for p in parts if isinstance(p, str)]
    return "".join(texts) if len(texts) == len(parts) else None


class Parameters:
    """The parameters the variables of a Compose file become, in the order they are met."""

    def __init__(self, dotenv: dict[str, str], note: Callable[[str, str], None]) -> None:
        self.dotenv = dotenv  # the `.env` beside the file: defaults Compose would use
        self.file_values: dict[str, str] = {}  # what env_file entries give, the same way
        self.note = note
        self.schemas: dict[str, dict[str, Any]] = {}
        self.required: set[str] = set()
        self.describe: dict[str, str] = {}

    def local_value(self, name: str, path: str) -> str | None:
        """The value `.env` or an env_file gives `name`; never a secret's: what the operator
        keeps beside the file is not published with the package."""
        value = self.dotenv.get(name, self.file_values.get(name))
        if value is not None and is_secret_name(name):
            if name not in self.schemas:
                self.note(path, f"the value {name} has beside the file is not copied: "
                          "it became a required secret parameter")  # fmt: skip
            return None
        return value

    # A variable met somewhere: its default (if known) and whether it must be given.
    def meet(self, variable: Variable, path: str) -> None:
        name = variable.name
        default: str | None = self.local_value(name, path)
        if default is None and variable.operator in (":-", "-"):
            default = static_text(variable.word)
        required = default is None and variable.operator not in (":+", "+")
        if variable.operator in (":?", "?"):
            message = static_text(variable.word)
            if message:
                self.describe.setdefault(name, message)
        known = self.schemas.get(name)
        schema = typed_parameter(default)
        if variable.operator in (":+", "+") and default is None:
            schema = {"type": "string", "default": ""}
        if known is None:
            if is_secret_name(name):
                schema["x-secret"] = True
            self.schemas[name] = schema
            if required:
                self.required.add(name)
        elif "default" in schema and "default" in known and known["default"] != schema["default"]:
            self.note(path, f"{name} has another default elsewhere; the first one is kept")
        elif "default" in schema and "default" not in known:
            known.update(schema)
            self.required.discard(name)
        for part in variable.word:
            if isinstance(part, Variable):
                self.meet(part, path)

    def schema(self) -> dict[str, Any] | None:
        if not self.schemas:
            return None
        properties = {}
        for name, schema in self.schemas.items():
            if name in self.describe:
                schema = {**schema, "description": self.describe[name][:1000]}
            properties[name] = schema
        result: dict[str, Any] = {"type": "object", "properties": properties}
        if required := [n for n in self.schemas if n in self.required]:
            result["required"] = required
        return result

    def template(self, text: str, path: str, hosts: Callable[[str], list[tuple[bool, str]]]) -> str:
        """`text` as a catalog template; `hosts` splits literal text into (is_template, piece)."""
        try:
            parts = parse(text)
        except ValueProblem as exc:
            raise ValueProblem(str(exc)) from None
        for part in parts:
            if isinstance(part, Variable):
                self.meet(part, path)
        pieces = []
        for part in parts:
            if isinstance(part, Variable):
                pieces.append("{{ " + _expression(part) + " }}")
            else:
                pieces.extend(piece if raw else literal(piece) for raw, piece in hosts(part))
        return "".join(pieces)

    def resolve(self, text: str) -> tuple[str | None, list[str]]:
        """`text` with each variable replaced by its default now; None and the unknown names
        when a variable has none."""
        parts = parse(text)
        unknown: list[str] = []
        resolved = "".join(_resolve(parts, self.dotenv, unknown))
        return (None if unknown else resolved), unknown


def _expression(variable: Variable) -> str:
    value = param_ref(variable.name)
    if variable.operator in (":+", "+"):
        return f"({_word(variable.word)} if {value} else '')"
    if variable.operator in (":-", "-") and static_text(variable.word) is None:
        return f"({value} or {_word(variable.word)})"
    return value


def _word(parts: list[Part]) -> str:
    if not parts:
        return "''"
    pieces = [_expression(p) if isinstance(p, Variable) else repr(p) for p in parts]
    return " ~ ".join(f"({p})" if " " in p else p for p in pieces)


def _resolve(parts: list[Part], dotenv: dict[str, str], unknown: list[str]) -> list[str]:
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif part.name in dotenv:
            value = dotenv[part.name]
            if part.operator in (":+", "+"):
                out.extend(_resolve(part.word, dotenv, unknown) if value else [])
            elif part.operator.startswith(":") and not value and part.operator != ":?":
                out.extend(_resolve(part.word, dotenv, unknown))
            else:
                out.append(value)
        elif part.operator in (":-", "-"):
            out.extend(_resolve(part.word, dotenv, unknown))
        elif part.operator in (":+", "+"):
            continue
        else:
            unknown.append(part.name)
    return out


def read_dotenv(text: str) -> dict[str, str]:
    """KEY=VALUE lines (`export ` allowed, # comments, single or double quotes)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not _NAME.fullmatch(key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"')
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value if sep else ""
    return values


# -- ports ------------------------------------------------------------------------------------

MAX_PORT_RANGE = 32


@dataclass(frozen=True)
class Port:
    container: int
    protocol: str = "tcp"
    published: bool = False
    host: str = ""  # the host port (or address and port) asked for, which the catalog drops
    name: str = ""


def _port_number(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", text) or not 1 <= int(text) <= 65535:
        raise ValueProblem(f"{text!r} is not a port number (1-65535)")
    return int(text)


def _port_range(text: str) -> list[int]:
    low, sep, high = text.partition("-")
    if not sep:
        return [_port_number(text)]
    first, last = _port_number(low), _port_number(high)
    if last < first or last - first >= MAX_PORT_RANGE:
        raise ValueProblem(f"the range {text} is not a range of at most {MAX_PORT_RANGE} ports")
    return list(range(first, last + 1))


def short_port(spec: str) -> list[Port]:
    """`[[ip:]host:]container[/protocol]`, either side possibly a range."""
    body, _, protocol = spec.strip().partition("/")
    protocol = protocol or "tcp"
    if protocol not in ("tcp", "udp"):
        raise ValueProblem(f"protocol {protocol!r} is not tcp or udp")
    if body.startswith("["):  # [::1]:8080:80
        body = body[1:].partition("]")[2]
        body = body.lstrip(":")
    host, _, container = body.rpartition(":")
    return [Port(n, protocol, True, host) for n in _port_range(container)]


def long_port(spec: dict[str, Any]) -> Port:
    target = spec.get("target")
    if not isinstance(target, int | str):
        raise ValueProblem("a port needs its target (the container port)")
    protocol = str(spec.get("protocol") or "tcp")
    if protocol not in ("tcp", "udp"):
        raise ValueProblem(f"protocol {protocol!r} is not tcp or udp")
    host = str(spec.get("published") or "")
    name = str(spec.get("name") or "")
    return Port(_port_number(str(target)), protocol, True, host, name)


# -- volumes ----------------------------------------------------------------------------------

# Host paths no app may bind: the host's system, its devices and the engine's socket.
SYSTEM_PATHS = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root",
    "/run", "/sbin", "/sys", "/tmp", "/usr", "/var",
)  # fmt: skip


def host_path_problem(source: str) -> str | None:
    """Why binding host path `source` is refused, or None for app data."""
    path = posixpath.normpath(re.sub(r"/+", "/", source))
    if path.endswith(".sock") or "docker.sock" in path:
        return f"binding the host socket {source} is not allowed"
    if path == "/" or any(path == p or path.startswith(p + "/") for p in SYSTEM_PATHS):
        return f"binds of host system paths are not allowed ({source})"
    return None


@dataclass(frozen=True)
class Mount:
    target: str
    source: str = ""  # a volume name, a host path, or "" for an anonymous volume
    bind: bool = False
    read_only: bool = False
    kind: str = "volume"  # volume, bind, tmpfs, or another type Compose knows


def _is_path(source: str) -> bool:
    return source.startswith(("/", ".", "~", "$")) or "/" in source


def short_mount(spec: str) -> Mount:
    """`source:target[:mode]` or a lone `target` (an anonymous volume)."""
    pieces = spec.split(":")
    if len(pieces) == 1:
        return Mount(pieces[0])
    if len(pieces) > 3:
        raise ValueProblem(f"{spec!r} is not source:target[:mode]")
    source, target = pieces[0], pieces[1]
    mode = pieces[2].split(",") if len(pieces) == 3 else []
    bind = _is_path(source)
    return Mount(target, source, bind, "ro" in mode, "bind" if bind else "volume")


def long_mount(spec: dict[str, Any]) -> Mount:
    kind = str(spec.get("type") or "volume")
    target = spec.get("target")
    if not isinstance(target, str):
        raise ValueProblem("a volume needs its target (the container path)")
    source = str(spec.get("source") or "")
    return Mount(target, source, kind == "bind", spec.get("read_only") is True, kind)


def volume_slug(text: str, taken: set[str]) -> str:
    """A volume name (`^[a-z0-9][a-z0-9_-]{0,62}$`) from a Compose name or path, not in `taken`."""
    base = re.sub(r"[^a-z0-9_-]+|-{2,}", "-", text.lower())
    base = re.sub(r"-{2,}", "-", base).strip("-_")[:56] or "data"
    if not base[0].isalnum():
        base = "v" + base
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


# -- durations and sizes ----------------------------------------------------------------------

_DURATION_UNITS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")


def duration(value: Any) -> str:
    """A Compose duration (`1m30s`, `1.5s`, `100ms`, or seconds as a number) in the catalog's
    form (`90s`, `1500ms`)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        ms = float(value) * 1e3
    elif isinstance(value, str) and value and _DURATION.sub("", value) == "":
        ms = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION.findall(value))
    else:
        raise ValueProblem(f"{value!r} is not a duration like 10s or 1m30s")
    ms = round(ms)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)


def size(value: Any) -> str:
    """A Compose size (`512m`, `1gb`, `2GiB`, bytes as a number) in the catalog's form."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    match = _SIZE.fullmatch(str(value).strip())
    if not match:
        raise ValueProblem(f"{value!r} is not a size like 512m or 1g")
    number, unit = match.groups()
    unit = unit.lower()
    if unit == "t":
        return f"{float(number) * 1024:g}g"
    return f"{number}{unit}"
