"""A Murano class's `getContainer`, read statically, as one catalog service.

The method must be a plain sequence of assignments followed by a `Return` of the container
mapping (`name`, `image`, `env`, `ports`, `commands`, `volumes`). Values become templates:
text is escaped with `literal`; what a property, a connection or a `format(...)` yields comes
from the `Links` the importer passes in, which decide what parameters, binding slots and
services the package gets. Anything else is refused, naming its keys in the class file.
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Protocol

from packages.importers import literal
from packages.importers.murano_pl import (
    MISSING,
    Body,
    Call,
    Keys,
    Lit,
    MuranoClass,
    Name,
    Node,
    Pair,
    Ref,
    Unsupported,
    format_pattern,
    is_expression,
    parse_expression,
    read_body,
    refusal,
)

# What a property-chosen image becomes when nothing fixes it: an official image, so that no
# one else can publish what runs under its name; the report asks for the real one.
PLACEHOLDER_IMAGE = "busybox:latest"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KNOWN_KEYS = frozenset({"name", "image", "env", "ports", "commands"})
_SCOPES = frozenset({"public", "cloud", "internal", "host", "private"})


class Links(Protocol):
    """What a container's values point at, answered by the importer."""

    def parameter(self, cls: MuranoClass, prop: str, keys: Keys) -> str:
        """The template reading property `prop` (`{{ params.prop }}`)."""

    def connection(self, cls: MuranoClass, prop: str, port: int, attr: str, keys: Keys) -> str:
        """The template of `getConnectionTo($.prop, port).attr`, attr being host or port."""

    def static(self, cls: MuranoClass, prop: str) -> Any:
        """The value a property has unless someone changes it (MISSING when none)."""

    def handled(self, cls: MuranoClass, prop: str) -> None:
        """Mark a property as converted without becoming a parameter."""

    def note(self, source: str, keys: Keys, message: str) -> None: ...


def container_service(cls: MuranoClass, links: Links, *, publishable: bool) -> dict[str, Any]:
    """The service `getContainer` describes; ImportRefused naming what cannot be converted."""
    body = read_body(cls, "getContainer")
    if body is None:
        raise refusal(
            cls.source,
            ("Methods", "getContainer"),
            "missing: the class runs no container (a Docker application returns it from"
            " getContainer)",
        )
    if body.returned is MISSING:
        raise refusal(
            cls.source,
            ("Methods", "getContainer", "Body"),
            "no Return at its top level: only assignments followed by a Return of the container"
            " are read",
        )
    if not isinstance(body.returned, dict):
        raise refusal(cls.source, body.keys, "must return a mapping with image, env and ports")
    return _Container(cls, body, links).service(publishable)


class _Container:
    def __init__(self, cls: MuranoClass, body: Body, links: Links) -> None:
        self.cls = cls
        self.body = body
        self.links = links
        self.returned: dict = body.returned
        init = read_body(cls, ".init")
        self.init = init.assignments if init else {}
        self.scopes: dict[str, str] = {}  # a scope expression, judged once -> its scope

    def refuse(self, keys: Keys, message: str) -> Exception:
        return refusal(self.cls.source, keys, message)

    def note(self, keys: Keys, message: str) -> None:
        self.links.note(self.cls.source, keys, message)

    def service(self, publishable: bool) -> dict[str, Any]:
        service: dict[str, Any] = {"image": self.image()}
        command = self.command()
        if command:
            service["command"] = command
        environment = self.environment()
        if environment:
            service["environment"] = environment
        ports = self.ports(publishable)
        if ports:
            service["ports"] = ports
        self.other_keys()
        return service

    # --- image and name ----------------------------------------------------------------------

    def image(self) -> str:
        keys = (*self.body.keys, "image")
        value = self.returned.get("image")
        if not isinstance(value, str) or not value.strip():
            raise self.refuse(keys, "missing: the container needs an image name")
        if not is_expression(value):
            return value.strip()
        node = self.parse(value, keys)
        if not (isinstance(node, Ref) and node.var == "" and len(node.attrs) == 1):
            raise self.refuse(
                keys,
                f"{value!r} is an expression: a catalog image is named in the package, never"
                " computed",
            )
        prop = node.attrs[0]
        self.links.handled(self.cls, prop)
        default = self.links.static(self.cls, prop)
        if isinstance(default, str) and default.strip() and not is_expression(default):
            self.note(
                keys,
                f"the image is property {prop}, chosen per deployment in Murano; a catalog"
                f" image is fixed in the package: its default {default.strip()!r} is used",
            )
            return default.strip()
        self.note(
            keys,
            f"the image is property {prop}, chosen per deployment in Murano, with no default;"
            f" a catalog image is fixed in the package: {PLACEHOLDER_IMAGE} stands in, set the"
            " real image before uploading",
        )
        return PLACEHOLDER_IMAGE

    def other_keys(self) -> None:
        for key, value in self.returned.items():
            keys = (*self.body.keys, str(key))
            if key == "name":
                if isinstance(value, str) and is_expression(value):
                    node = self.parse(value, keys)
                    if isinstance(node, Ref) and node.var == "" and len(node.attrs) == 1:
                        self.links.handled(self.cls, node.attrs[0])
                self.note(keys, "the container's name is dropped: the catalog names containers")
            elif key == "privileged":
                if value not in (False, None):
                    raise self.refuse(keys, "the catalog never runs a privileged container")
            elif key == "volumes":
                if value:
                    self.note(
                        keys,
                        "dropped: Murano's host and temporary volumes are not converted;"
                        " declare named volumes by hand",
                    )
            elif key not in _KNOWN_KEYS:
                self.note(keys, "dropped: not a container setting the importer knows")

    # --- values --------------------------------------------------------------------------------

    def parse(self, text: str, keys: Keys) -> Node:
        try:
            return parse_expression(text)
        except Unsupported as exc:
            raise self.refuse(keys, f"{text!r}: {exc}") from None

    def value(self, raw: Any, keys: Keys, depth: int = 0) -> str:
        """The template of one value as the container would get it (env values, arguments)."""
        if isinstance(raw, bool):
            return "true" if raw else "false"
        if isinstance(raw, int | float):
            return str(raw)
        if not isinstance(raw, str):
            raise self.refuse(keys, "must be a text, a number or an expression")
        if not is_expression(raw):
            return literal(raw)
        return self.template(self.parse(raw, keys), keys, raw, depth)

    def template(self, node: Node, keys: Keys, text: str, depth: int = 0) -> str:
        if depth > 8:
            raise self.refuse(keys, f"{text!r}: its variables refer to each other too deeply")
        if isinstance(node, Lit):
            return literal(str(node.value))
        if isinstance(node, Ref) and node.var == "" and len(node.attrs) == 1:
            return self.links.parameter(self.cls, node.attrs[0], keys)
        if isinstance(node, Ref) and node.var:
            return self.variable(node, keys, text, depth)
        if isinstance(node, Call) and node.name == "format":
            pattern, args = self.format_parts(node, keys, text)
            return "".join(
                literal(piece)
                if isinstance(piece, str)
                else self.template(args[piece], keys, text, depth + 1)
                for piece in format_pattern(pattern, len(args))
            )
        raise self.refuse(
            keys,
            f"{text!r} is not understood: only text, $.property, a getConnectionTo result's"
            " host or port, and format(...) of these are converted",
        )

    def format_parts(self, node: Call, keys: Keys, text: str) -> tuple[str, tuple[Node, ...]]:
        if node.receiver is None and node.args and isinstance(node.args[0], Lit):
            pattern, args = node.args[0].value, node.args[1:]
        elif isinstance(node.receiver, Lit):
            pattern, args = node.receiver.value, node.args
        else:
            raise self.refuse(keys, f"{text!r}: format needs a quoted pattern")
        if not isinstance(pattern, str):
            raise self.refuse(keys, f"{text!r}: format needs a quoted pattern")
        return pattern, args

    def variable(self, node: Ref, keys: Keys, text: str, depth: int) -> str:
        assigned = self.body.assignments.get((node.var, ()), MISSING)
        if assigned is MISSING:
            return self.unassigned(node, keys, text)
        connection = self.connection_of(assigned, keys)
        if connection is not None:
            if len(node.attrs) != 1 or node.attrs[0] not in ("host", "port"):
                raise self.refuse(keys, f"{text!r}: a connection has only a host and a port")
            prop, port = connection
            return self.links.connection(self.cls, prop, port, node.attrs[0], keys)
        if node.attrs:
            raise self.refuse(keys, f"{text!r} is not understood")
        return self.value(assigned, keys, depth + 1)

    def unassigned(self, node: Ref, keys: Keys, text: str) -> str:
        """A variable never assigned: read as the method's only connection when that is clear.

        Real packages misspell the variable they assigned a connection to (Orion assigns
        $mongoendopoint and reads $mongoendpoint); Murano would fail at deploy time.
        """
        connections = [
            (var, found)
            for (var, attrs), value in self.body.assignments.items()
            if not attrs and (found := self.connection_of(value, keys)) is not None
        ]
        if len(connections) != 1 or len(node.attrs) != 1 or node.attrs[0] not in ("host", "port"):
            raise self.refuse(keys, f"{text!r}: ${node.var} is not assigned before the Return")
        var, (prop, port) = connections[0]
        self.note(
            keys,
            f"${node.var} is never assigned: read as ${var}, the method's only connection"
            f" (getConnectionTo($.{prop}, {port}))",
        )
        return self.links.connection(self.cls, prop, port, node.attrs[0], keys)

    def connection_of(self, raw: Any, keys: Keys) -> tuple[str, int] | None:
        """(property, port) when `raw` is `$.getConnectionTo($.property, PORT)`."""
        if not (isinstance(raw, str) and "getConnectionTo" in raw):
            return None
        node = self.parse(raw, keys)
        if not (
            isinstance(node, Call)
            and node.name == "getConnectionTo"
            and node.receiver == Ref("")
            and len(node.args) in (2, 3)
        ):
            return None
        target, port = node.args[0], node.args[1]
        if not (isinstance(target, Ref) and target.var == "" and len(target.attrs) == 1):
            raise self.refuse(keys, f"{raw!r}: getConnectionTo needs $.property as its app")
        if not (isinstance(port, Lit) and isinstance(port.value, int) and 0 < port.value < 65536):
            raise self.refuse(keys, f"{raw!r}: getConnectionTo needs a port number")
        return target.attrs[0], port.value

    # --- environment and command ---------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        keys = (*self.body.keys, "env")
        value = self.returned.get("env")
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.note(
                keys,
                f"{value!r} is computed at deploy time: not converted, no variable is set;"
                " add the variables by hand",
            )
            return {}
        environment = {}
        for name, raw in value.items():
            if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
                raise self.refuse((*keys, str(name)), "not an environment variable name")
            environment[name] = self.value(raw, (*keys, name))
        return environment

    def command(self) -> list[str]:
        keys = (*self.body.keys, "commands")
        value = self.returned.get("commands")
        if value in (None, [], ""):
            return []
        items = value if isinstance(value, list) else [value]
        arguments: list[str] = []
        for i, raw in enumerate(items):
            arguments += self.arguments(raw, (*keys, i) if isinstance(value, list) else keys)
        self.note(
            keys,
            "became the service's command: the arguments after the image's entrypoint, as"
            " Murano handed them to docker run",
        )
        return arguments

    def arguments(self, raw: Any, keys: Keys) -> list[str]:
        """One command entry, split as the shell Murano ran `docker run` in would split it."""
        if not isinstance(raw, str) or not is_expression(raw):
            return [literal(word) for word in self.split(str(raw), keys)]
        node = self.parse(raw, keys)
        if not isinstance(node, Call) or node.name != "format":
            return [self.template(node, keys, raw)]
        pattern, args = self.format_parts(node, keys, raw)
        # Split the pattern, not the result: a value substituted stays one argument.
        return [
            self.template(Call("format", (Lit(word), *args)), keys, raw)
            for word in self.split(pattern, keys)
        ]

    def split(self, text: str, keys: Keys) -> list[str]:
        try:
            return shlex.split(text)
        except ValueError as exc:
            raise self.refuse(keys, f"{text!r} cannot be split into arguments: {exc}") from None

    # --- ports ---------------------------------------------------------------------------------

    def ports(self, publishable: bool) -> list[dict[str, Any]]:
        keys = (*self.body.keys, "ports")
        value = self.returned.get("ports")
        if value is None:
            return []
        if not isinstance(value, list):
            self.note(
                keys,
                f"{value!r} is computed at deploy time: no port is declared; add them by hand",
            )
            return []
        ports = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.refuse((*keys, i), "must be a mapping with port and scope")
            port = item.get("port")
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise self.refuse(
                    (*keys, i, "port"), f"must be a port number from 1 to 65535, not {port!r}"
                )
            entry: dict[str, Any] = {"container": port}
            protocol = str(item.get("protocol", "TCP")).upper()
            if protocol not in ("TCP", "UDP"):
                raise self.refuse((*keys, i, "protocol"), "must be TCP or UDP")
            if protocol == "UDP":
                entry["protocol"] = "udp"
            if publishable and self.scope(item.get("scope"), (*keys, i, "scope")) == "public":
                entry["publish"] = True
            ports.append(entry)
        return ports

    def scope(self, raw: Any, keys: Keys) -> str:
        """public, cloud, internal or host; only public is published."""
        if raw is None:
            return "private"
        if isinstance(raw, str) and not is_expression(raw):
            if raw not in _SCOPES:
                raise self.refuse(keys, "must be public, cloud, internal or host")
            return raw
        text = str(raw)
        if text not in self.scopes:
            self.scopes[text] = "internal"  # what a scope defined by itself would be
            self.scopes[text] = self.judge_scope(text, keys)
        return self.scopes[text]

    def judge_scope(self, text: str, keys: Keys) -> str:
        node = self.parse(text, keys)
        if isinstance(node, Ref) and node.var == "" and len(node.attrs) == 1:
            assigned = self.init.get(("", node.attrs), MISSING)
            if assigned is not MISSING:
                return self.scope(assigned, ("Methods", ".init", "Body"))
        if isinstance(node, Call) and node.name == "switch" and node.receiver is None:
            for case in node.args:
                if not isinstance(case, Pair):
                    break
                chosen = self.condition(case.key)
                if chosen is None:
                    break
                if chosen:
                    scope = self.scope_word(case.value)
                    if scope is not None:
                        return scope
                    break
        self.note(keys, f"{text!r} is not understood: the port is not published")
        return "internal"

    def condition(self, node: Node) -> bool | None:
        if isinstance(node, Name) and node.text in ("true", "false"):
            return node.text == "true"
        if isinstance(node, Ref) and node.var == "" and len(node.attrs) == 1:
            prop = node.attrs[0]
            value = self.links.static(self.cls, prop)
            if isinstance(value, bool):
                self.links.handled(self.cls, prop)
                self.note(
                    ("Properties", prop),
                    f"chose per deployment whether ports are published; the catalog's choice is"
                    f" fixed in the package: its default ({str(value).lower()}) is used",
                )
                return value
        return None

    def scope_word(self, node: Node) -> str | None:
        word = node.text if isinstance(node, Name) else node.value if isinstance(node, Lit) else ""
        return word if word in _SCOPES else None
