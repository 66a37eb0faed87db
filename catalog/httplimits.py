"""Bounds of a request the HTTP server enforces before the API sees it (414, 431).

`catalogctl serve` sets them on gunicorn; the OpenAPI document states them on every route.
gunicorn answers with a short HTML page of its own, not a problem.
"""

from __future__ import annotations

REQUEST_LINE_BYTES = 4094  # method, path with query, version: over it 414
HEADER_LINE_BYTES = 8190  # one header line, name and value: over it 431
HEADER_COUNT = 100  # header lines: over it 431

# Query parameters that look like credentials: the API refuses a request carrying one (401,
# tokens belong in the header), and the access log never writes their values.
QUERY_CREDENTIALS = ("token", "access_token", "api_key", "apikey")

DESCRIPTIONS = {
    414: f"The request line is longer than {REQUEST_LINE_BYTES} bytes; the HTTP server answers "
    "before the API, with a page of its own",
    431: f"A header line is longer than {HEADER_LINE_BYTES} bytes, or there are more than "
    f"{HEADER_COUNT} headers; the HTTP server answers before the API, with a page of its own",
}
