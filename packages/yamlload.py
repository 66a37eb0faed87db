"""Safe, bounded YAML loading for manifests: no tags, no alias bombs, no duplicate keys."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from packages.errors import ManifestError
from packages.limits import DEFAULT_LIMITS, Limits

# libyaml is much faster; both loaders share the Python constructor and resolver below.
if TYPE_CHECKING:
    # CSafeLoader swaps SafeLoader's Python reader, scanner and parser for libyaml's; what the
    # subclass below overrides and calls is the same in both, so check it against SafeLoader.
    _BaseLoader = yaml.SafeLoader
else:
    _BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_CORE = "tag:yaml.org,2002:"
# Tags an author may write explicitly; everything else (python/*, set, binary...) is refused.
_ALLOWED_TAGS = frozenset(
    {"!", *(_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map"))}
)
_MERGE_TAG = _CORE + "merge"
_TIMESTAMP_TAG = _CORE + "timestamp"


class _ManifestLoader(_BaseLoader):
    """The safe loader, refusing duplicate keys and keeping dates as strings."""

    # A manifest is JSON-shaped data: `2024-01-01` stays a string instead of becoming a date.
    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._checked: set[int] = set()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # Merge keys (`<<: *base`) rewrite node.value in place, so look at each mapping's own
        # keys before its first flattening: overriding a merged key is not a duplicate.
        if id(node) not in self._checked:
            self._checked.add(id(node))
            self._refuse_duplicate_keys(node)
        super().flatten_mapping(node)

    def _refuse_duplicate_keys(self, node: yaml.MappingNode) -> None:
        first_seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue  # non-scalar keys are refused as unhashable by the constructor
            key = self.construct_object(key_node)
            if key in first_seen:
                line = first_seen[key].start_mark.line + 1
                raise ManifestError(
                    f"duplicate key {key!r} at line {key_node.start_mark.line + 1}"
                    f" (first defined at line {line})"
                )
            first_seen[key] = key_node


@dataclass
class _Open:
    """A collection being walked: where its node count started, and its children's height."""

    anchor: str | None
    nodes_before: int
    height: int = 0


@dataclass
class _Walk:
    """Counts over the event stream, as if every alias were expanded in place."""

    limits: Limits
    nodes: int = 0
    aliases: int = 0
    stack: list[_Open] = field(default_factory=list)
    # anchor -> (expanded node count, nesting height) of the node it names
    anchors: dict[str, tuple[int, int]] = field(default_factory=dict)
    documents: int = 0

    def visit(self, event: yaml.Event) -> None:
        assert event.start_mark is not None  # the parser marks every event it makes
        line = event.start_mark.line + 1
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise ManifestError(f"a manifest is a single YAML document (second at line {line})")
        elif isinstance(event, yaml.AliasEvent):
            assert event.anchor is not None  # `*name`: an alias always names its anchor
            self._alias(event.anchor, line)
        elif isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
            self._check_tag(event.tag, line)
            self._add_nodes(1, 0, line)
            if isinstance(event, yaml.ScalarEvent):
                if event.anchor is not None:
                    self.anchors[event.anchor] = (1, 0)
            else:
                self._open(event.anchor, line)
        elif isinstance(event, yaml.CollectionEndEvent):
            self._close()

    def _check_tag(self, tag: str | None, line: int) -> None:
        if tag is not None and tag not in _ALLOWED_TAGS:
            shown = "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag
            raise ManifestError(f"YAML tag {shown} is not allowed (line {line})")

    def _alias(self, anchor: str, line: int) -> None:
        self.aliases += 1
        if self.aliases > self.limits.max_yaml_aliases:
            raise ManifestError(
                f"too many YAML aliases: more than {self.limits.max_yaml_aliases} (line {line})"
            )
        if any(frame.anchor == anchor for frame in self.stack):
            raise ManifestError(f"recursive YAML alias *{anchor} (line {line})")
        if anchor not in self.anchors:
            raise ManifestError(f"undefined YAML alias *{anchor} (line {line})")
        nodes, height = self.anchors[anchor]
        self._add_nodes(nodes, height, line)

    def _add_nodes(self, count: int, height: int, line: int) -> None:
        # An alias counts as the whole subtree it names: that is what a consumer walks.
        self.nodes += count
        if self.nodes > self.limits.max_yaml_nodes:
            raise ManifestError(
                f"YAML document too large: more than {self.limits.max_yaml_nodes} nodes"
                f" once aliases are expanded (line {line})"
            )
        if len(self.stack) + height > self.limits.max_yaml_depth:
            raise ManifestError(
                f"YAML nested too deeply: more than {self.limits.max_yaml_depth} levels"
                f" (line {line})"
            )
        if self.stack:
            self.stack[-1].height = max(self.stack[-1].height, height)

    def _open(self, anchor: str | None, line: int) -> None:
        # The collection itself was counted by _add_nodes; nodes_before excludes it.
        self.stack.append(_Open(anchor, self.nodes - 1))
        if len(self.stack) > self.limits.max_yaml_depth:
            raise ManifestError(
                f"YAML nested too deeply: more than {self.limits.max_yaml_depth} levels"
                f" (line {line})"
            )

    def _close(self) -> None:
        frame = self.stack.pop()
        height = frame.height + 1
        if frame.anchor is not None:
            self.anchors[frame.anchor] = (self.nodes - frame.nodes_before, height)
        if self.stack:
            self.stack[-1].height = max(self.stack[-1].height, height)


def _decode(data: bytes, limits: Limits, source: str) -> str:
    if len(data) > limits.max_manifest_bytes:
        raise ManifestError(
            f"too large: {len(data)} bytes, the limit is {limits.max_manifest_bytes}", path=source
        )
    # A UTF-8 byte order mark is tolerated (editors on Windows add one); offsets count it.
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        offset = bom + exc.start
        raise ManifestError(f"not valid UTF-8 (byte offset {offset})", path=source) from None


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        return f"unacceptable character #x{exc.character:04x} at character offset {exc.position}"
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        context = f" {exc.context}" if exc.context else ""
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        return f"invalid YAML at {where}: {exc.problem}{context}"
    return f"invalid YAML: {exc}"


def load_yaml(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, source: str = "manifest.yaml"
) -> Any:
    """Parse one YAML document of JSON-like data, refusing anything unsafe or over `limits`.

    Raises ManifestError (its problem's path is `source`) naming what is wrong and where.
    """
    text = _decode(data, limits, source)
    try:
        # First walk the events only: cheap and linear, so a bomb is refused before any
        # node tree exists; then build the data with the same parser.
        walk = _Walk(limits)
        for event in yaml.parse(text, Loader=_ManifestLoader):
            walk.visit(event)
        return yaml.load(text, Loader=_ManifestLoader)  # a SafeLoader subclass
    except ManifestError as exc:
        raise ManifestError(exc.problems[0].message, path=source) from None
    except yaml.YAMLError as exc:
        raise ManifestError(_describe_yaml_error(exc), path=source) from None
    except (ValueError, OverflowError) as exc:
        # e.g. `!!int abc`: the constructor's conversion fails outside YAML's own errors.
        raise ManifestError(f"invalid YAML value: {exc}", path=source) from None
