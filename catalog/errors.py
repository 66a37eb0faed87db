"""Domain exceptions of the catalog and their one mapping to RFC 9457 problem details."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json, request
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from catalog.secretbox import SecretKeyError
from packages.errors import PackageError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
UPLOAD_SLACK = 64 * 1024  # a request body may exceed its upload's limit by this (multipart)


class CatalogError(Exception):
    """Base of the errors the API answers with; `status` is the HTTP status."""

    status = 400
    title = "Bad Request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


class ValidationFailed(CatalogError):
    title = "Validation Failed"


class Unauthorized(CatalogError):
    status, title = 401, "Unauthorized"

    def __init__(self, detail: str = "a valid bearer token is required") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="catalog"'})


class Forbidden(CatalogError):
    status, title = 403, "Forbidden"


class NotFound(CatalogError):
    status, title = 404, "Not Found"


class Conflict(CatalogError):
    status, title = 409, "Conflict"


class PreconditionFailed(CatalogError):
    status, title = 412, "Precondition Failed"


class PayloadTooLarge(CatalogError):
    status, title = 413, "Content Too Large"


class UnsupportedMediaType(CatalogError):
    status, title = 415, "Unsupported Media Type"


class TooManyRequests(CatalogError):
    status, title = 429, "Too Many Requests"


class ServiceUnavailable(CatalogError):
    status, title = 503, "Service Unavailable"


class InsufficientStorage(CatalogError):
    status, title = 507, "Insufficient Storage"


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers.update(headers or {})
    return response


def flatten_messages(messages: Any, prefix: str = "") -> list[dict[str, str]]:
    """marshmallow/webargs nested messages -> [{path, message}], one entry per message."""
    found: list[dict[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            # webargs nests by location ("json", "query"); the location is not a path.
            if not prefix and key in ("json", "query", "form", "files", "headers", "view_args"):
                found.extend(flatten_messages(value, ""))
                continue
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            found.extend(flatten_messages(value, path))
    elif isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            found.extend({"path": prefix, "message": m} for m in messages)
        else:
            for message in messages:
                found.extend(flatten_messages(message, prefix))
    else:
        found.append({"path": prefix, "message": str(messages)})
    return found


def handle_http_exception(error: HTTPException) -> Response:
    data = getattr(error, "data", None) or {}
    messages = data.get("errors") or data.get("messages")
    if error.code in (400, 422) and messages is not None:
        # Request validation by the argument schemas (or a body webargs cannot parse):
        # a plain 400 with every path.
        return problem_response(
            400, "Validation Failed", "the request is invalid", errors=flatten_messages(messages)
        )
    headers = dict(data.get("headers") or {})
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    title, detail = error.name, data.get("message") or error.description
    if error.code == 413:
        # Werkzeug's MAX_CONTENT_LENGTH check, before any byte is read: the same problem
        # as an upload found too large while streaming (PayloadTooLarge).
        title = PayloadTooLarge.title
        # The route's own limit (an image tarball's is larger), less the headers' allowance.
        limit = (request.max_content_length or 0) - UPLOAD_SLACK
        detail = f"the request body is larger than the {limit} bytes an upload may have"
    elif error.code == 429:
        detail = f"rate limit exceeded: {error.description}"  # e.g. "3 per 1 minute"
    if error.code and error.code >= 500:
        detail = None  # never show internals
    return problem_response(error.code or 500, title, detail, headers=headers)


def handle_catalog_error(error: CatalogError) -> Response:
    return problem_response(
        error.status, error.title, error.detail, errors=error.errors, headers=error.headers
    )


def handle_package_error(error: PackageError) -> Response:
    title = "Content Too Large" if error.status == 413 else "Invalid Package"
    problems = [{"path": p.path, "message": p.message} for p in error.problems]
    detail = "; ".join(str(p) for p in error.problems[:3])
    return problem_response(error.status, title, detail, errors=problems)


def handle_unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    # Lost or refused connections only (no statement ran: a connect failed), not SQL errors.
    if isinstance(error, DBAPIError) and (
        error.connection_invalidated
        or (isinstance(error, OperationalError) and error.statement is None)
    ):
        log.warning("the database does not answer: %s", error.orig)
        return problem_response(
            503, "Service Unavailable", "the database does not answer", headers={"Retry-After": "1"}
        )
    if isinstance(error, SecretKeyError):  # the operator's to fix; says nothing secret
        log.error("%s", error)
        return problem_response(503, "Service Unavailable", str(error))
    log.exception("unhandled error", exc_info=error)
    return problem_response(500, "Internal Server Error")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(CatalogError, handle_catalog_error)
    app.register_error_handler(PackageError, handle_package_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
