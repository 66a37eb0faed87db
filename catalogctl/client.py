"""HTTP client of the catalog API: one place that turns failures into one clear line."""

from __future__ import annotations

import os
from typing import Any, BinaryIO

import click
import requests

DEFAULT_URL = "http://127.0.0.1:8000"


class ApiError(click.ClickException):
    """A failed API call, printed as one line: status, title and detail, then each problem."""

    def __init__(self, status: int, body: dict[str, Any] | None, fallback: str) -> None:
        body = body or {}
        lines = [f"{status} {body.get('title', '')}: {body.get('detail') or fallback}".strip()]
        lines += [f"{e.get('path') or '-'}: {e.get('message')}" for e in body.get("errors") or []]
        super().__init__("\n".join(lines))
        self.status = status


class Client:
    def __init__(
        self, url: str | None = None, token: str | None = None, timeout: float = 60
    ) -> None:
        self.url = (url or os.environ.get("CATALOG_URL") or DEFAULT_URL).rstrip("/")
        self.token = token or os.environ.get("CATALOG_TOKEN")
        self.timeout = timeout
        self.session = requests.Session()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self.session.request(
                method, f"{self.url}/v1{path}", headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.ConnectionError:
            raise click.ClickException(
                f"cannot connect to the catalog at {self.url}; start it with `make run` "
                "or `catalogctl serve`, or set --url / CATALOG_URL"
            ) from None
        except requests.Timeout:
            raise click.ClickException(
                f"the catalog at {self.url} did not answer in time"
            ) from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            raise ApiError(response.status_code, body, response.reason or "request failed")
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def upload(self, archive: BinaryIO, *, visibility: str = "private", categories: list[str] = ()):
        params: dict[str, str] = {"visibility": visibility}
        if categories:
            params["categories"] = ",".join(categories)
        return self.json("POST", "/packages", params=params, files={"file": archive})
