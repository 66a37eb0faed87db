"""The OpenAPI document tells the truth about errors: RFC 9457 problems, listed per route.

Every error the API answers is `application/problem+json` with the `Problem` schema
(catalog/errors.py builds them all). flask-smorest's own `Error` schema and its catch-all
`default` response are replaced: each operation lists the statuses it can answer, so a
client (and the Schemathesis run in tests/integration/test_openapi.py) can rely on them.
`ProblemPlugin` documents, for every operation of every blueprint:

- 400 when it has arguments (flask-smorest documents 422; catalog/errors.py answers 400);
- 401 unless it is documented `security=[]` (no token needed);
- 404 when its path names an object (`{name}`): missing, or not the caller's to see;
- 429 for a read (GET) the read rate limit counts (catalog/ratelimit.py);
- 414 and 431, which the HTTP server answers before the API for an over-long request line
  or header (catalog/httplimits.py): its own HTML page, not a problem;
- a problem+json body for an error response documented without one
  (`@blp.alt_response(409, description=...)`).

Anything else with `@problems(403, 409, ...)` under `@blp.route`, next to `@blp.response`.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

import flask_smorest
from apispec import BasePlugin
from flask_smorest.utils import prepare_response

from catalog import httplimits
from catalog.errors import PROBLEM_JSON
from catalog.ratelimit import UNLIMITED_PATHS
from catalog.schemas.common import Problem

F = TypeVar("F", bound=Callable[..., Any])

BINARY = {"type": "string", "format": "binary"}
TEXT = {"type": "string"}

# Headers that come with some problems.
PROBLEM_HEADERS: dict[int, dict[str, dict]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The authentication scheme: `Bearer`",
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before the limit lets a request through again",
            "schema": {"type": "integer", "minimum": 0},
        }
    },
}

# Component names by status, spelled here: `HTTPStatus` names change between Python versions
# (413 and 422 did in 3.13), and the committed document must not.
RESPONSE_NAMES = {
    304: "NOT_MODIFIED",
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    412: "PRECONDITION_FAILED",
    413: "CONTENT_TOO_LARGE",
    414: "URI_TOO_LONG",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
    431: "REQUEST_HEADER_FIELDS_TOO_LARGE",
    503: "SERVICE_UNAVAILABLE",
    507: "INSUFFICIENT_STORAGE",
}

PROBLEM_DESCRIPTIONS = {
    400: "The request is invalid; `errors` lists each problem with its path",
    401: "No valid bearer token",
    403: "The token's role or tenant may not do this",
    404: "No such object, or one the caller may not see",
    409: "Conflicts with the current state",
    412: "The `If-Match` ETag is stale",
    413: "The request body is larger than the limit",
    415: "The request body's media type is not accepted",
    429: "Too many requests; retry after `Retry-After` seconds",
    503: "A service the API needs is unavailable",
    507: "The blob store is out of space; nothing was written",
}


# Answers of the HTTP server, not of the API: every route may get them.
SERVER_ANSWERS = {
    status: {"description": text, "content": {"text/html": {"schema": TEXT}}}
    for status, text in httplimits.DESCRIPTIONS.items()
}


def problems(*statuses: int) -> Callable[[F], F]:
    """Document problem responses of a view; put it under `@blp.route` like `@blp.response`."""
    unknown = set(statuses) - set(RESPONSE_NAMES)
    if unknown:
        raise ValueError(f"no documented response for {sorted(unknown)}: add it to RESPONSE_NAMES")
    return flask_smorest.Blueprint.doc(responses={s: RESPONSE_NAMES[s] for s in statuses})


class ProblemPlugin(BasePlugin):
    """Completes each operation's error responses, whatever Blueprint class documented it."""

    def operation_helper(self, path: str | None = None, operations=None, **_kwargs: Any) -> None:
        for method, operation in (operations or {}).items():
            if method == "parameters" or not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            statuses = set()
            # webargs validation is documented as 422 by flask-smorest; the API answers 400.
            for key in (422, "422"):
                if responses.pop(key, None) is not None:
                    statuses.add(400)
            if operation.get("security") != []:
                statuses.add(401)
            if path and "{" in path:
                statuses.add(404)  # a named object that does not exist, or is not the caller's
            if method == "get" and path not in UNLIMITED_PATHS:
                statuses.add(429)
            statuses.update(SERVER_ANSWERS)
            present = {int(code) for code in responses if str(code).isdigit()}
            for status in sorted(statuses - present):
                responses[status] = RESPONSE_NAMES[status]
            for code, response in responses.items():
                # Documented without a body (`alt_response(409, description=...)`): it is a
                # problem all the same.
                if isinstance(response, dict) and "content" not in response and int(code) >= 400:
                    response["content"] = {PROBLEM_JSON: {"schema": "Problem"}}
                    if int(code) in PROBLEM_HEADERS:
                        response.setdefault("headers", PROBLEM_HEADERS[int(code)])


class SchemaRulesPlugin(BasePlugin):
    """Adds a schema's `OPENAPI_RULES` to its component: JSON Schema keywords for rules a
    marshmallow schema checks in code (`@validates_schema`) and cannot state itself."""

    def schema_helper(self, name: str, definition: dict, **kwargs: Any) -> dict | None:
        return getattr(kwargs.get("schema"), "OPENAPI_RULES", None)


class Api(flask_smorest.Api):
    """flask-smorest's Api with the Problem shape for every error response."""

    ERROR_SCHEMA = Problem
    DEFAULT_ERROR_RESPONSE_NAME = None  # no catch-all: each operation lists its statuses

    def _register_responses(self) -> None:
        """Lazily registered responses by status name; errors are problem+json."""
        self.spec.components.schema("Problem", schema=self.ERROR_SCHEMA)
        for status in HTTPStatus:
            response: dict[str, Any] = {
                "description": PROBLEM_DESCRIPTIONS.get(status, status.phrase)
            }
            if status in SERVER_ANSWERS:
                response = dict(SERVER_ANSWERS[status])
            elif status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                if status in PROBLEM_HEADERS:
                    response["headers"] = PROBLEM_HEADERS[status]
            prepare_response(response, self.spec, PROBLEM_JSON)
            name = RESPONSE_NAMES.get(status, status.name)
            self.spec.components.response(name, response, lazy=True)

    def _init_spec(self, *, extra_plugins=None, **kwargs: Any) -> None:
        plugins = [*(extra_plugins or ()), ProblemPlugin(), SchemaRulesPlugin()]
        super()._init_spec(extra_plugins=plugins, **kwargs)
