"""MuranoPL read statically: its YAML, class definitions, property contracts and the few YAQL
expressions a Docker application's `getContainer` is written with.

Nothing is evaluated. An expression becomes a small tree (`Lit`, `Name`, `Ref`, `Call`, `Pair`)
that the importer turns into catalog templates or refuses; what the grammar below does not
cover (operators, indexing, lambdas) raises `Unsupported`. The grammar: string and integer
literals, bare words (`public`, `std:Environment`), references (`$.prop`, `$this.prop`,
`$var.attr`), calls and method calls (`format(...)`, `$.getConnectionTo($.db, 5432)`,
`'{0}'.format(...)`), `key => value` arguments and parentheses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from packages.errors import Problem
from packages.importers import ImportRefused
from packages.limits import DEFAULT_LIMITS
from packages.problems import format_path
from packages.yamlload import load_yaml

Keys = tuple[str | int, ...]


def located(keys: Keys, message: str) -> str:
    """`message` led by the keys it is about: `Methods.getContainer.Body[1]: ...`."""
    where = format_path(keys)
    return f"{where}: {message}" if where else message


def refusal(source: str, keys: Keys, message: str) -> ImportRefused:
    """A refusal naming the file of the Murano package (its path) and the keys inside it."""
    return ImportRefused([Problem(source, located(keys, message))])


# --- YAML ------------------------------------------------------------------------------------


def load_murano_yaml(data: bytes, source: str) -> Any:
    """A MuranoPL or UI file, read by the catalog's safe loader (`source` names it in errors).

    MuranoPL writes the default namespace as a bare `=` key, which YAML 1.1 resolves to its
    `value` tag, one no safe loader constructs: such scalars are quoted first.
    """
    return load_yaml(_quote_bare_equals(data), source=source)


def _quote_bare_equals(data: bytes) -> bytes:
    if b"=" not in data or len(data) > DEFAULT_LIMITS.max_manifest_bytes:
        return data  # nothing to quote, or load_yaml refuses the size anyway
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
        tokens = list(yaml.scan(text, Loader=yaml.SafeLoader))
    except (UnicodeDecodeError, yaml.YAMLError):
        return data  # load_yaml says what is wrong, and where
    spans = [
        (token.start_mark.index, token.end_mark.index)
        for token in tokens
        if isinstance(token, yaml.ScalarToken) and token.plain and token.value == "="
    ]
    for start, end in reversed(spans):
        text = f"{text[:start]}'='{text[end:]}"
    return text.encode("utf-8")


# --- expressions -----------------------------------------------------------------------------


class Unsupported(ValueError):
    """An expression this reader does not understand; the message says what."""


@dataclass(frozen=True)
class Lit:
    value: str | int


@dataclass(frozen=True)
class Name:
    text: str  # a bare word: public, true, DockerInfluxDB, std:Environment


@dataclass(frozen=True)
class Ref:
    var: str  # "" for the object itself (`$`, `$this`), else a local variable's name
    attrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]
    receiver: Node | None = None


@dataclass(frozen=True)
class Pair:
    key: Node
    value: Node


Node = Lit | Name | Ref | Call | Pair

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<number>[0-9]+)
    | (?P<arrow>=>)
    | (?P<var>\$[A-Za-z_][A-Za-z0-9_]*|\$)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?::[A-Za-z_][A-Za-z0-9_]*)?)
    | (?P<punct>[.(),])""",
    re.VERBOSE,
)
_MAX_EXPRESSION = 4096
_MAX_NESTING = 32
_CALL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\(")


def is_expression(value: Any) -> bool:
    """Whether a string of a MuranoPL file is YAQL rather than plain text."""
    return isinstance(value, str) and ("$" in value or _CALL.search(value) is not None)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise Unsupported(f"{text[position : position + 10]!r} is not understood")
        if match.lastgroup != "space":
            tokens.append((str(match.lastgroup), match.group()))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > _MAX_EXPRESSION:
            raise Unsupported(f"longer than {_MAX_EXPRESSION} characters")
        self.tokens = _tokens(text)
        self.position = 0
        self.depth = 0

    def peek(self, kind: str, text: str | None = None) -> bool:
        if self.position >= len(self.tokens):
            return False
        found_kind, found_text = self.tokens[self.position]
        return found_kind == kind and (text is None or found_text == text)

    def take(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise Unsupported("the expression ends too early")
        self.position += 1
        return self.tokens[self.position - 1]

    def expect(self, kind: str, text: str | None = None) -> str:
        if not self.peek(kind, text):
            raise Unsupported(f"expected {text or kind}")
        return self.take()[1]

    def expression(self) -> Node:
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise Unsupported(f"nested more than {_MAX_NESTING} deep")
        node = self.chain()
        if self.peek("arrow"):
            self.take()
            node = Pair(node, self.chain())
        self.depth -= 1
        return node

    def chain(self) -> Node:
        node = self.atom()
        while self.peek("punct", "."):
            self.take()
            name = self.expect("name")
            if self.peek("punct", "("):
                node = Call(name, self.arguments(), node)
            elif isinstance(node, Ref):
                node = Ref(node.var, (*node.attrs, name))
            else:
                raise Unsupported(f"the attribute .{name} of a computed value")
        return node

    def atom(self) -> Node:
        kind, text = self.take()
        if kind == "string":
            return Lit(re.sub(r"\\(.)", r"\1", text[1:-1]))
        if kind == "number":
            return Lit(int(text))
        if kind == "var":
            return Ref("" if text in ("$", "$this") else text[1:])
        if kind == "name":
            return Call(text, self.arguments()) if self.peek("punct", "(") else Name(text)
        if text == "(":
            node = self.expression()
            self.expect("punct", ")")
            return node
        raise Unsupported(f"{text!r} is not understood here")

    def arguments(self) -> tuple[Node, ...]:
        self.expect("punct", "(")
        args: list[Node] = []
        while not self.peek("punct", ")"):
            if args:
                self.expect("punct", ",")
            args.append(self.expression())
        self.take()
        return tuple(args)


def parse_expression(text: str) -> Node:
    """The tree of one YAQL expression, or Unsupported."""
    parser = _Parser(text)
    node = parser.expression()
    if parser.position != len(parser.tokens):
        raise Unsupported(f"{parser.tokens[parser.position][1]!r} is not understood here")
    return node


def format_pattern(pattern: str, count: int) -> list[str | int]:
    """A `format` pattern as text pieces and argument indexes: `'-h {0}'` -> ['-h ', 0]."""
    pieces: list[str | int] = []
    auto = 0
    for match in re.finditer(r"\{\{|\}\}|\{([0-9]*)\}|([{}])|[^{}]+", pattern):
        if match.group(2):
            raise Unsupported(f"the format pattern {pattern!r} has an unmatched brace")
        if match.group(1) is not None:
            index = int(match.group(1)) if match.group(1) else auto
            auto += 1
            if index >= count:
                raise Unsupported(f"the format pattern {pattern!r} names argument {index}")
            pieces.append(index)
        else:
            text = match.group()
            pieces.append(text[0] if text in ("{{", "}}") else text)
    return pieces


# --- contracts and classes -------------------------------------------------------------------

_CONTRACT = re.compile(r"\$\.(string|int|bool|class)\(\s*([^,()]*?)\s*(?:,[^()]*)?\)")
_NOT_NULL = ".notNull()"


@dataclass(frozen=True)
class Contract:
    """What a property's contract says: its kind, the class it names, whether it is required."""

    kind: str  # "string", "int", "bool", "class" or "other"
    text: str  # as written
    target: str = ""  # the class of a `$.class(...)` contract, as written
    not_null: bool = False
    rest: str = ""  # what follows besides notNull(): checks the catalog does not keep


def parse_contract(value: Any) -> Contract:
    text = value.strip() if isinstance(value, str) else repr(value)
    match = _CONTRACT.match(text) if isinstance(value, str) else None
    if match is None:
        return Contract("other", text, not_null=_NOT_NULL in text)
    rest = text[match.end() :]
    kind, target = match.group(1), match.group(2)
    if kind == "class" and not target:
        return Contract("other", text, not_null=_NOT_NULL in rest)
    return Contract(kind, text, target, _NOT_NULL in rest, rest.replace(_NOT_NULL, "").strip())


MISSING: Any = object()  # a property without a Default


@dataclass(frozen=True)
class Property:
    name: str
    contract: Contract
    default: Any = MISSING
    usage: str = "In"


@dataclass
class MuranoClass:
    """One class file: its FQN (from the manifest), namespaces, properties and methods."""

    fqn: str
    source: str  # the file inside the Murano package, for problems and report lines
    name: str
    namespaces: dict[str, str]
    properties: dict[str, Property]
    methods: dict[str, Any]

    def resolve(self, name: str, keys: Keys) -> str:
        """A class name as written (`ns:Name`, `Name`, `a.b.Name`) as a full name."""
        if ":" in name:
            prefix, short = name.split(":", 1)
            if prefix not in self.namespaces:
                raise refusal(self.source, keys, f"the namespace {prefix!r} is not declared")
            return f"{self.namespaces[prefix]}.{short}"
        if "." in name or "=" not in self.namespaces:
            return name
        return f"{self.namespaces['=']}.{name}"


def read_class(doc: Any, fqn: str, source: str) -> MuranoClass:
    if not isinstance(doc, dict):
        raise refusal(source, (), "a MuranoPL class must be a mapping")
    parts: dict[str, dict] = {}
    for key in ("Namespaces", "Properties", "Methods"):
        value = doc.get(key) or {}
        if not isinstance(value, dict):
            raise refusal(source, (key,), "must be a mapping")
        parts[key] = value
    namespaces = {str(k): str(v) for k, v in parts["Namespaces"].items()}
    properties = {}
    for name, spec in parts["Properties"].items():
        if not isinstance(spec, dict):
            raise refusal(source, ("Properties", str(name)), "must be a mapping with a Contract")
        properties[str(name)] = Property(
            str(name),
            parse_contract(spec.get("Contract")),
            spec.get("Default", MISSING),
            str(spec.get("Usage", "In")),
        )
    name = doc.get("Name")
    return MuranoClass(
        fqn,
        source,
        name if isinstance(name, str) else fqn.rsplit(".", 1)[-1],
        namespaces,
        properties,
        {str(k): v for k, v in parts["Methods"].items()},
    )


@dataclass
class Body:
    """A method's top-level steps read up to its Return: assignments and what it returns."""

    assignments: dict[tuple[str, tuple[str, ...]], Any]  # (var, attrs) of the target -> value
    returned: Any = MISSING
    keys: Keys = ()  # where the Return is


def read_body(cls: MuranoClass, method: str) -> Body | None:
    """The method's Body, or None when the class has no such method (or an empty one)."""
    spec = cls.methods.get(method)
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise refusal(cls.source, ("Methods", method), "must be a mapping with a Body")
    steps = spec.get("Body")
    if steps is None:
        return None
    base: Keys = ("Methods", method, "Body")
    if not isinstance(steps, list):
        steps, indexed = [steps], False
    else:
        indexed = True
    body = Body({})
    for i, step in enumerate(steps):
        keys = (*base, i) if indexed else base
        if not isinstance(step, dict) or len(step) != 1:
            continue  # an expression run for its effect, or a control block: not read
        ((target, value),) = step.items()
        if target == "Return":
            body.returned, body.keys = value, (*keys, "Return")
            break
        if isinstance(target, str) and target.startswith("$"):
            try:
                ref = parse_expression(target)
            except Unsupported:
                continue  # `$map[$key]: ...` and the like: not a name this reader follows
            if isinstance(ref, Ref):
                body.assignments[(ref.var, ref.attrs)] = value
    return body
