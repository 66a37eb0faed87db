"""Template inputs that know their dotted path, so that a failure can name the variable.

`template_context` builds them; `PathUndefined` chains through undefined names
(`bindings.cache.outputs.host | default('')`) and fails naming the whole path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.exceptions import SecurityError, TemplateRuntimeError
from jinja2.runtime import missing


class NamedFailure(TemplateError):
    """A failure tied to a variable: `base` comes from the inputs, `names` from the template."""

    def __init__(self, message: str, *, base: tuple[Any, ...], names: tuple[Any, ...]) -> None:
        super().__init__(message)
        self.base = base
        self.names = names


class MissingVariable(NamedFailure, UndefinedError):
    """An undefined variable was used."""


class Refused(NamedFailure, SecurityError):
    """The sandbox refused an attribute."""


class Scope(dict):
    """A mapping of template inputs that knows where it sits (`bindings.db.outputs`)."""

    __slots__ = ("_catalog_path",)
    _catalog_path: tuple[Any, ...]


class ScopeList(list):
    """A list of template inputs that knows where it sits (`params.hosts`)."""

    __slots__ = ("_catalog_path",)
    _catalog_path: tuple[Any, ...]


def join_path(parts: Iterable[Any]) -> str:
    path = ""
    for name in parts:
        if isinstance(name, str):
            path = f"{path}.{name}" if path else name
        else:
            path = f"{path}[{name!r}]"
    return path


def scoped(value: Any, path: tuple[Any, ...]) -> Any:
    """Deep-copy `value` into path-aware containers, so the caller's data stays untouched."""
    scope: Scope | ScopeList
    if isinstance(value, Mapping):
        scope = Scope({k: scoped(v, (*path, k)) for k, v in value.items()})
    elif isinstance(value, list | tuple):
        scope = ScopeList(scoped(v, (*path, i)) for i, v in enumerate(value))
    else:
        return value
    scope._catalog_path = path
    return scope


def base_of(obj: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Where `obj` sits: the part known from the inputs, and the names a template chose."""
    if obj is missing:
        return (), ()
    if isinstance(obj, Scope | ScopeList):
        return obj._catalog_path, ()
    if isinstance(obj, PathUndefined):
        return obj._catalog_base, obj._catalog_names
    # Only the type of an unknown object, never its value: it may be a secret.
    return (f"<{type(obj).__name__}>",), ()


class PathUndefined(StrictUndefined):
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
        exc: Callable[[str], TemplateRuntimeError] = UndefinedError,
    ) -> None:
        base, names = base_of(obj)
        names = (*names, name)
        if exc is UndefinedError and hint is None:
            exc = functools.partial(MissingVariable, base=base, names=names)
        # Jinja only calls `exc` with the message; its annotation asks for a class.
        super().__init__(hint, obj, name, exc)  # type: ignore[arg-type]
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

    def _chain(self, name: Any) -> PathUndefined:
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
        "params": scoped(params, ("params",)),
        "settings": scoped(settings, ("settings",)),
        "bindings": scoped({s: {"outputs": o} for s, o in bindings.items()}, ("bindings",)),
        "services": scoped(services, ("services",)),
        "app": scoped(app, ("app",)),
    }


def as_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """Accept a context from `template_context` as is, or make a plain dict path-aware."""
    return {
        k: v if isinstance(v, Scope | ScopeList) else scoped(v, (k,)) for k, v in context.items()
    }
