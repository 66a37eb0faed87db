"""Render a package's templates (service fields, config files, outputs) in a Jinja2 sandbox.

The walkers (`render_service`, `render_file`, `render_outputs`) find the template
values and hand each to a `TextRenderer`. Deployments use one that runs in a child
process with hard limits (`packages.render_process`); `in_process` renders here and
serves that child and the tests.
"""

from __future__ import annotations

import base64
import copy
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import jinja2
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, Undefined, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.runtime import missing
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from packages.errors import RenderError
from packages.limits import MiB

#: The oldest Jinja2 without a known sandbox escape (CVE-2024-56326, CVE-2025-27516).
SAFE_JINJA = (3, 1, 6)
#: A rendered value (one string field or one file) may not exceed this many UTF-8 bytes.
MAX_RENDERED_BYTES = 1 * MiB
# Results of `**` above this many bits are refused: they only serve to burn CPU and memory.
_MAX_POWER_BITS = 64 * 1024
# str methods whose integer arguments are output widths.
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
# A printf or str.format width/precision of 7+ digits asks for megabytes of padding.
_HUGE_WIDTH = re.compile(r"\d{7,}")
_TEMPLATE_MARKERS = ("{{", "{%", "{#")


def jinja_version(version: str = jinja2.__version__) -> tuple[int, ...]:
    """The release numbers of a Jinja2 version string (`3.1.6`, `3.2.0.dev0` -> 3, 2, 0)."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


if jinja_version() < SAFE_JINJA:  # an older install has known escapes: render nothing
    raise ImportError(f"Jinja2 {jinja2.__version__} is installed; templates need >= 3.1.6")


class _LimitExceeded(TemplateError):
    """A template asked for more output or memory than a render may use."""


class _NamedFailure(TemplateError):
    """A failure tied to a variable: `base` comes from the inputs, `names` from the template."""

    def __init__(self, message: str, *, base: tuple[Any, ...], names: tuple[Any, ...]) -> None:
        super().__init__(message)
        self.base = base
        self.names = names


class _MissingVariable(_NamedFailure, UndefinedError):
    """An undefined variable was used."""


class _Refused(_NamedFailure, SecurityError):
    """The sandbox refused an attribute."""


# --- the template inputs: mappings and lists that know their dotted path ------------------


class _Scope(dict):
    """A mapping of template inputs that knows where it sits (`bindings.db.outputs`)."""

    __slots__ = ("_catalog_path",)


class _ScopeList(list):
    """A list of template inputs that knows where it sits (`params.hosts`)."""

    __slots__ = ("_catalog_path",)


def _join_path(parts: Iterable[Any]) -> str:
    path = ""
    for name in parts:
        if isinstance(name, str):
            path = f"{path}.{name}" if path else name
        else:
            path = f"{path}[{name!r}]"
    return path


def _scoped(value: Any, path: tuple[Any, ...]) -> Any:
    """Deep-copy `value` into path-aware containers, so the caller's data stays untouched."""
    if isinstance(value, Mapping):
        scope = _Scope({k: _scoped(v, (*path, k)) for k, v in value.items()})
    elif isinstance(value, list | tuple):
        scope = _ScopeList(_scoped(v, (*path, i)) for i, v in enumerate(value))
    else:
        return value
    scope._catalog_path = path
    return scope


def _base_of(obj: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Where `obj` sits: the part known from the inputs, and the names a template chose."""
    if obj is missing:
        return (), ()
    if isinstance(obj, _Scope | _ScopeList):
        return obj._catalog_path, ()
    if isinstance(obj, _PathUndefined):
        return obj._catalog_base, obj._catalog_names
    # Only the type of an unknown object, never its value: it may be a secret.
    return (f"<{type(obj).__name__}>",), ()


class _PathUndefined(StrictUndefined):
    """Strict undefined that records the full dotted name and chains through `.a.b`.

    Chaining lets `{{ bindings.cache.outputs.host | default('') }}` work for an
    optional binding, while any real use still fails, naming the whole path.
    The path is kept as parts so that an error can leave out any name the
    template computed (`params[params.password]`) rather than wrote.
    """

    __slots__ = ("_catalog_base", "_catalog_names")

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: Any = None,
        exc: type[Exception] = UndefinedError,
    ) -> None:
        base, names = _base_of(obj)
        names = (*names, name)
        if exc is UndefinedError and hint is None:
            exc = functools.partial(_MissingVariable, base=base, names=names)
        super().__init__(hint, obj, name, exc)
        self._catalog_base = base
        self._catalog_names = names

    @property
    def _undefined_message(self) -> str:
        # Deliberately nameless: the name may be computed from a secret; see _error_detail.
        return self._undefined_hint or "undefined variable"

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__" and name[-2:] == "__":
            raise AttributeError(name)
        return self._chain(name)

    def __getitem__(self, key: Any) -> Any:
        return self._chain(key)

    def _chain(self, name: Any) -> _PathUndefined:
        self._fail_if_refused()
        return type(self)(obj=self, name=name)

    def _fail_if_refused(self) -> None:
        if self._undefined_hint is not None:
            # A sandbox refusal must not turn into a harmless, `default`-able undefined.
            self._fail_with_undefined_error()


def template_context(
    *,
    params: Mapping[str, Any],
    settings: Mapping[str, Any],
    bindings: Mapping[str, Mapping[str, Any]],
    services: Mapping[str, Mapping[str, Any]],
    app: Mapping[str, Any],
) -> dict[str, Any]:
    """The variables every template of one app sees.

    `bindings` maps a slot to the bound app's rendered outputs (what
    `render_outputs` returned for it): templates read them as
    `bindings.<slot>.outputs.<key>`. `services` maps a service of this app to
    its template-visible facts (`{"hostname": ...}`); `app` holds `name` and `env`.
    """
    for slot, outputs in bindings.items():
        if not isinstance(outputs, Mapping):
            raise TypeError(f"bindings[{slot!r}] must be a mapping of outputs")
    return {
        "params": _scoped(params, ("params",)),
        "settings": _scoped(settings, ("settings",)),
        "bindings": _scoped({s: {"outputs": o} for s, o in bindings.items()}, ("bindings",)),
        "services": _scoped(services, ("services",)),
        "app": _scoped(app, ("app",)),
    }


# --- the sandbox --------------------------------------------------------------------------


def _check_size(size: int) -> None:
    if size > MAX_RENDERED_BYTES:
        raise _LimitExceeded(f"a value would exceed the {MAX_RENDERED_BYTES} byte limit")


def _is_sized(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_format_pattern(pattern: str, args: Iterable[Any] = ()) -> None:
    if _HUGE_WIDTH.search(pattern):
        raise _LimitExceeded("a format width or precision is too large")
    if "*" in pattern:  # printf `%*d` takes its width from the arguments
        for arg in args:
            if _is_int(arg):
                _check_size(abs(arg))


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        seq, count = (left, right) if _is_sized(left) else (right, left)
        if _is_sized(seq) and _is_int(count):
            _check_size(len(seq) * count)
    elif operator == "+" and _is_sized(left) and _is_sized(right):
        _check_size(len(left) + len(right))
    elif operator == "**" and _is_int(left) and _is_int(right) and right > 0:
        if right * max(abs(left).bit_length() - 1, 0) > _MAX_POWER_BITS:
            raise _LimitExceeded("a power is too large")
    elif operator == "%" and isinstance(left, str):
        _check_format_pattern(left, right if isinstance(right, tuple) else (right,))


def _check_call_args(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    values = (*args, *kwargs.values())
    # Bounding every argument bounds growth through recursive macros (`f(s ~ s)`).
    for value in values:
        if _is_sized(value):
            _check_size(len(value))
    if isinstance(getattr(obj, "__self__", None), str) and obj.__name__ in _WIDTH_METHODS:
        for value in values:
            if _is_int(value):
                _check_size(abs(value))


class _BoundedNamespace(Namespace):
    """`namespace()` whose attributes cannot grow past the size limit across a loop."""

    def __setitem__(self, name: str, value: Any) -> None:
        if _is_sized(value):
            _check_size(len(value))
        super().__setitem__(name, value)


class _CatalogSandbox(ImmutableSandboxedEnvironment):
    """Immutable sandbox that also bounds output size and memory-hungry operators.

    These bounds give a clear message early; the hard limits on time and memory are the
    child process's (`packages.render_process`), which hold whatever a template does.
    """

    intercepted_binops = frozenset({"*", "+", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        if isinstance(obj, Undefined):
            obj._fail_with_undefined_error()
        if not self.is_safe_callable(obj):
            # Jinja's own message shows repr(obj), which can hold a value.
            raise SecurityError("calling this function is not allowed in templates")
        _check_call_args(obj, args, kwargs)
        # Jinja's own call keeps every check it makes (str.format, in some releases).
        return super().call(context, obj, *args, **kwargs)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        base, names = _base_of(obj)
        return self.undefined(
            "access is not allowed",
            obj=obj,
            name=attribute,
            exc=functools.partial(_Refused, base=base, names=(*names, attribute)),
        )

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_pattern(value.__self__)
        return wrapped


def _b64encode(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return base64.b64encode(data).decode("ascii")


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    if isinstance(value, _PathUndefined):
        value._fail_if_refused()
    return FILTERS["default"](value, default_value, boolean)


def _bounded_center(value: Any, width: int = 80) -> str:
    _check_size(width if _is_int(width) else 0)
    return FILTERS["center"](value, width)


def _bounded_indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    per_line = len(width) if isinstance(width, str) else width
    _check_size(len(s) + (str(s).count("\n") + 1) * per_line)
    return FILTERS["indent"](s, width, first, blank)


def _bounded_format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_format_pattern(str(value), args)
    return FILTERS["format"](value, *args, **kwargs)


def _make_environment() -> _CatalogSandbox:
    env = _CatalogSandbox(
        undefined=_PathUndefined,
        autoescape=False,
        keep_trailing_newline=True,  # config files keep their final newline
        loader=None,  # templates cannot include or import anything
    )
    env.filters.update(
        center=_bounded_center,
        indent=_bounded_indent,
        format=_bounded_format,
        b64encode=_b64encode,
        default=_default,
        d=_default,
    )
    env.globals.pop("lipsum", None)  # lipsum(n) produces n paragraphs of text
    env.globals["namespace"] = _BoundedNamespace
    return env


_ENV = _make_environment()
# Compiling is most of a render's cost; services of one app often share a template.
_compiled = functools.lru_cache(maxsize=128)(_ENV.from_string)


def clear_compiled() -> None:
    """Forget compiled templates (a benchmark's floor compiles afresh, as each child does)."""
    _compiled.cache_clear()


# --- rendering ----------------------------------------------------------------------------


def _render_stream(chunks: Iterable[str]) -> str:
    parts: list[str] = []
    chars = 0
    for chunk in chunks:
        chars += len(chunk)
        _check_size(chars)  # a character is at least one byte: stop early
        parts.append(chunk)
    text = "".join(parts)
    _check_size(len(text.encode("utf-8")))
    return text


def _variable_name(exc: _NamedFailure, source: str) -> str:
    # A name the template computed rather than wrote may be a value: show `?` instead.
    names = (name if str(name) in source else "?" for name in exc.names)
    return _join_path((*exc.base, *names))


def _error_detail(exc: Exception, source: str) -> tuple[str, str]:
    """A message and variable name for `exc` that never contain a rendered value."""
    if isinstance(exc, _MissingVariable):
        variable = _variable_name(exc, source)
        return f"undefined variable {variable!r}", variable
    if isinstance(exc, _Refused):
        variable = _variable_name(exc, source)
        return f"refused by the template sandbox: access to {variable!r}", variable
    if isinstance(exc, TemplateSyntaxError):
        return f"template syntax error at line {exc.lineno}: {exc.message}", ""
    if isinstance(exc, _LimitExceeded):
        return str(exc.message), ""
    if isinstance(exc, SecurityError):
        return "refused by the template sandbox", ""
    # Any other exception's text may quote the value it choked on (int('s3cret')).
    return f"template failed: {type(exc).__name__}", ""


def parse_template(source: str) -> tuple[Any, Mapping[str, Any], Mapping[str, Any]]:
    """The syntax tree of `source` and the filters and tests the sandbox knows (for upload)."""
    return _ENV.parse(source), _ENV.filters, _ENV.tests


def is_template(source: str) -> bool:
    """Whether `source` holds Jinja markup at all; plain strings are used as they are."""
    return any(marker in source for marker in _TEMPLATE_MARKERS)


def render_text(source: str, context: Mapping[str, Any], *, service: str, field: str) -> str:
    """One template value rendered here, in this process, with the sandbox's soft bounds."""
    try:
        return _render_stream(_compiled(source).generate(context))
    except RecursionError:
        raise RenderError("template recursion too deep", service=service, field=field) from None
    except MemoryError:
        raise  # the render child names its memory limit
    except Exception as exc:
        message, variable = _error_detail(exc, source)
        # `from None`: the chained traceback would show the values being rendered.
        raise RenderError(message, service=service, field=field, variable=variable) from None


class TextRenderer(Protocol):
    """Renders one template value of a context; raises RenderError naming service and field."""

    def __call__(self, source: str, *, service: str, field: str) -> str: ...


def in_process(context: Mapping[str, Any]) -> TextRenderer:
    """A renderer of `context` in this process: for the render child and for tests only."""
    return functools.partial(render_text, context=_as_context(context))


def _render_text(source: str, render: TextRenderer, *, service: str, field: str) -> str:
    if not is_template(source):
        return source
    return render(source, service=service, field=field)


def _as_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """Accept a context from `template_context` as is, or make a plain dict path-aware."""
    return {
        k: v if isinstance(v, _Scope | _ScopeList) else _scoped(v, (k,)) for k, v in context.items()
    }


def _as_text(value: Any, *, service: str, field: str) -> str:
    """The text form of a scalar: YAML's spelling for booleans and null."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    raise RenderError(
        f"expected a string or number, got {type(value).__name__}", service=service, field=field
    )


def _render_scalar(value: Any, render: TextRenderer, *, service: str, field: str) -> str:
    if not isinstance(value, str):
        return _as_text(value, service=service, field=field)
    return _render_text(value, render, service=service, field=field)


def _render_command(
    value: str | list[Any] | None, render: TextRenderer, *, service: str, field: str
) -> str | list[str] | None:
    """A command as written: a list renders item by item, a string (shell-split later) whole."""
    if value is None:
        return None
    if isinstance(value, str):
        return _render_text(value, render, service=service, field=field)
    return [
        _render_scalar(v, render, service=service, field=f"{field}[{i}]")
        for i, v in enumerate(value)
    ]


def render_service(name: str, service: Mapping[str, Any], render: TextRenderer) -> dict:
    """A new service dict with every template field rendered; everything else copied as is.

    Rendered: `command`, `entrypoint`, `environment` values (non-strings become
    strings: `true`/`false` for booleans, `""` for null), `healthcheck.command`,
    `user` and `working_dir` (a numeric `user` becomes a string). The `image` is never
    a template: the worker resolves exactly the reference the manifest names.
    """
    rendered = copy.deepcopy(dict(service))
    for key in ("command", "entrypoint"):
        if key in service:
            rendered[key] = _render_command(service[key], render, service=name, field=key)
    if service.get("environment") is not None:
        rendered["environment"] = {
            var: _render_scalar(value, render, service=name, field=f"environment.{var}")
            for var, value in service["environment"].items()
        }
    for key in ("user", "working_dir"):
        if service.get(key) is not None:  # YAML reads `user: 1000` as a number
            rendered[key] = _render_scalar(service[key], render, service=name, field=key)
    healthcheck = rendered.get("healthcheck")
    if isinstance(healthcheck, dict) and "command" in healthcheck:
        field = "healthcheck.command"
        healthcheck["command"] = _render_command(
            healthcheck["command"], render, service=name, field=field
        )
    return rendered


def render_file(
    service_name: str,
    container_path: str,
    member: str,
    source: bytes,
    render: TextRenderer,
) -> bytes:
    """The bytes to write at `container_path`: a `.j2` member rendered as UTF-8, others as is."""
    if not member.endswith(".j2"):
        return source
    field = f"files.{container_path}"
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError:
        raise RenderError(
            f"template {member} is not UTF-8", service=service_name, field=field
        ) from None
    try:
        return _render_text(text, render, service=service_name, field=field).encode("utf-8")
    except RenderError as exc:  # name the member too: that is the file the publisher wrote
        message = f"{member}: {exc.problems[0].message}"
        raise RenderError(
            message, service=service_name, field=field, variable=exc.variable
        ) from None


def render_outputs(outputs: Mapping[str, Any], render: TextRenderer) -> dict[str, str]:
    """An app's outputs rendered, as binders will see them under `bindings.<slot>.outputs`."""
    return {
        key: _render_scalar(value, render, service="", field=f"outputs.{key}")
        for key, value in outputs.items()
    }
