"""How every process logs: text lines, or one JSON object per line (LOG_FORMAT=json).

JSON lines (python-json-logger) carry `time`, `level`, `logger`, `message`, `process` (api,
worker, tracker) and, where they apply, `request_id` (the API's, for a request and for the
worker task it published), `environment_id` and `revision`: context variables, set by the
API per request and by the worker per task, copied onto each record by a filter. Nothing
here adds a header, a body or a parameter to a record, so no token or secret reaches a line
that a caller's own message did not put there (and none does).
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
ENVIRONMENT_ID: ContextVar[str | None] = ContextVar("environment_id", default=None)
REVISION: ContextVar[int | None] = ContextVar("revision", default=None)
_CONTEXT = (("request_id", REQUEST_ID), ("environment_id", ENVIRONMENT_ID), ("revision", REVISION))

# A request id a client may choose (X-Request-Id); anything else gets one of ours.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The Celery message header that carries it to the task.
REQUEST_ID_HEADER = "catalog_request_id"


class ContextFilter(logging.Filter):
    """Copies the context variables that are set onto the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, variable in _CONTEXT:
            value = variable.get()
            if value is not None:
                setattr(record, name, value)
        return True


def json_formatter(process: str) -> logging.Formatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        static_fields={"process": process},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


def configure(level: str, fmt: str, *, process: str) -> None:
    """The root logger of this process: one stream handler on standard error.

    In text mode an existing configuration is left as it is (a test runner's, gunicorn's).
    """
    if fmt != "json":
        logging.basicConfig(level=level.upper(), format=TEXT_FORMAT)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter(process))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # a library's warning is a JSON line too


def request_id_from(header: str | None) -> str:
    """The client's X-Request-Id when it is a plain one, else a new id."""
    if header and REQUEST_ID_PATTERN.fullmatch(header):
        return header
    return uuid.uuid4().hex
