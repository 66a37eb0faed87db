"""A database that does not answer is 503; an SQL error stays a 500 that shows nothing."""

from __future__ import annotations

import json

from flask import Flask
from sqlalchemy.exc import OperationalError

from catalog.errors import handle_unexpected


def answer(error: Exception) -> tuple[int, dict, dict]:
    with Flask(__name__).app_context():
        response = handle_unexpected(error)
    return response.status_code, json.loads(response.get_data()), dict(response.headers)


def test_a_refused_connection_is_503_with_retry_after():
    status, body, headers = answer(OperationalError(None, None, OSError("connection refused")))
    assert status == 503
    assert body["detail"] == "the database does not answer"
    assert headers["Retry-After"] == "1"


def test_a_connection_lost_during_a_statement_is_503():
    error = OperationalError("SELECT 1", {}, OSError("server closed the connection"))
    error.connection_invalidated = True
    assert answer(error)[0] == 503


def test_an_sql_error_is_a_500_without_internals():
    status, body, _ = answer(OperationalError("SELECT nope", {}, Exception("no such column")))
    assert status == 500
    assert "detail" not in body
