"""The API's access log writes gunicorn's default line, from fewer fields."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn import glogging
from gunicorn.config import Config

from catalogctl.accesslog import FORMAT, AccessLogger, redacted

ENVIRON = {
    "REMOTE_ADDR": "10.0.0.7",
    "REQUEST_METHOD": "GET",
    "RAW_URI": "/v1/packages?q=web",
    "PATH_INFO": "/v1/packages",
    "QUERY_STRING": "q=web",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_USER_AGENT": "catalogctl/1.0",
}


def line(logger: glogging.Logger, resp, environ: dict) -> str:
    logger.now = lambda: "[26/Nov/2026:21:44:25 +0000]"
    request = SimpleNamespace(headers=[("HOST", "catalog"), ("USER-AGENT", "catalogctl/1.0")])
    atoms = logger.atoms(resp, request, environ, timedelta(microseconds=1500))
    return logger.cfg.access_log_format % logger.atoms_wrapper_class(atoms)


@pytest.mark.parametrize(
    ("resp", "environ"),
    [
        (SimpleNamespace(status="200 OK", sent=512, headers=[]), ENVIRON),
        (SimpleNamespace(status=404, sent=None, headers=[]), ENVIRON),
        (
            SimpleNamespace(status="201 CREATED", sent=0, headers=[("Location", "/v1/x")]),
            {**ENVIRON, "HTTP_REFERER": "http://ui/", "HTTP_AUTHORIZATION": "Basic dTpw"},
        ),
    ],
)
def test_the_line_is_the_stock_loggers(resp, environ):
    config = Config()
    assert config.access_log_format == FORMAT
    assert line(AccessLogger(config), resp, environ) == line(glogging.Logger(config), resp, environ)


@pytest.mark.parametrize(
    ("uri", "written"),
    [
        ("/v1/packages?token=cat_secret", "/v1/packages?token=***"),
        ("/v1/x?%74oken=cat_secret&q=1", "/v1/x?%74oken=***&q=1"),
        ("/v1/x?q=1&API_KEY=cat_secret#top", "/v1/x?q=1&API_KEY=***#top"),
        ("/v1/x?access_token=a&apikey=b", "/v1/x?access_token=***&apikey=***"),
        ("/v1/x?tokens=1&q=token", "/v1/x?tokens=1&q=token"),
        ("/v1/x", "/v1/x"),
    ],
)
def test_a_credential_in_the_query_is_never_written(uri, written):
    assert redacted(uri) == written
