"""The Jinja2 sandbox templates render in: immutable, no loader, bounded output and operators.

These bounds give a clear message early; the hard limits on time and memory are the child
process's (`packages.render_process`), which hold whatever a template does.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jinja2
from jinja2 import TemplateError, TemplateSyntaxError, Undefined
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from packages.errors import RenderError
from packages.limits import MiB
from packages.render_scope import (
    MissingVariable,
    NamedFailure,
    PathUndefined,
    Refused,
    base_of,
    join_path,
)

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


def jinja_version(version: str = jinja2.__version__) -> tuple[int, ...]:
    """The release numbers of a Jinja2 version string (`3.1.6`, `3.2.0.dev0` -> 3, 2, 0)."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


if jinja_version() < SAFE_JINJA:  # an older install has known escapes: render nothing
    raise ImportError(f"Jinja2 {jinja2.__version__} is installed; templates need >= 3.1.6")


class LimitExceeded(TemplateError):
    """A template asked for more output or memory than a render may use."""


def _check_size(size: int) -> None:
    if size > MAX_RENDERED_BYTES:
        raise LimitExceeded(f"a value would exceed the {MAX_RENDERED_BYTES} byte limit")


def _is_sized(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_format_pattern(pattern: str, args: Iterable[Any] = ()) -> None:
    if _HUGE_WIDTH.search(pattern):
        raise LimitExceeded("a format width or precision is too large")
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
            raise LimitExceeded("a power is too large")
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

    undefined: type[PathUndefined]  # what `_make_environment` passes
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
        base, names = base_of(obj)
        return self.undefined(
            "access is not allowed",
            obj=obj,
            name=attribute,
            exc=functools.partial(Refused, base=base, names=(*names, attribute)),
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
    if isinstance(value, PathUndefined):
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
        undefined=PathUndefined,
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


def _variable_name(exc: NamedFailure, source: str) -> str:
    # A name the template computed rather than wrote may be a value: show `?` instead.
    names = (name if str(name) in source else "?" for name in exc.names)
    return join_path((*exc.base, *names))


def _error_detail(exc: Exception, source: str) -> tuple[str, str]:
    """A message and variable name for `exc` that never contain a rendered value."""
    if isinstance(exc, MissingVariable):
        variable = _variable_name(exc, source)
        return f"undefined variable {variable!r}", variable
    if isinstance(exc, Refused):
        variable = _variable_name(exc, source)
        return f"refused by the template sandbox: access to {variable!r}", variable
    if isinstance(exc, TemplateSyntaxError):
        return f"template syntax error at line {exc.lineno}: {exc.message}", ""
    if isinstance(exc, LimitExceeded):
        return str(exc.message), ""
    if isinstance(exc, SecurityError):
        return "refused by the template sandbox", ""
    # Any other exception's text may quote the value it choked on (int('s3cret')).
    return f"template failed: {type(exc).__name__}", ""


def parse_template(source: str) -> tuple[Any, Mapping[str, Any], Mapping[str, Any]]:
    """The syntax tree of `source` and the filters and tests the sandbox knows (for upload)."""
    return _ENV.parse(source), _ENV.filters, _ENV.tests


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
