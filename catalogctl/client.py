"""HTTP client of the catalog API: one place that turns failures into one clear line."""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import quote

import click
import requests

DEFAULT_URL = "http://127.0.0.1:8000"


class ApiError(click.ClickException):
    """A failed API call, printed as one line: status, title and detail, then each problem."""

    def __init__(self, status: int, body: dict[str, Any] | None, fallback: str) -> None:
        body = body if isinstance(body, dict) else {}
        lines = [f"{status} {body.get('title', '')}: {body.get('detail') or fallback}".strip()]
        lines += [f"{e.get('path') or '-'}: {e.get('message')}" for e in body.get("errors") or []]
        super().__init__("\n".join(lines))
        self.status = status


@dataclass(frozen=True)
class ServerEvent:
    """One server-sent event: `id:`, `event:` and the JSON of its `data:` lines."""

    id: str | None
    event: str
    data: Any


def path(*segments: object) -> str:
    """An API path from segments, each quoted: path("environments", env, "apps")."""
    return "".join(f"/{quote(str(s), safe='')}" for s in segments)


class Client:
    def __init__(
        self, url: str | None = None, token: str | None = None, timeout: float = 60
    ) -> None:
        self.url = (url or os.environ.get("CATALOG_URL") or DEFAULT_URL).rstrip("/")
        self.token = token or os.environ.get("CATALOG_TOKEN")
        self.timeout = timeout
        self.session = requests.Session()

    def request(
        self, method: str, path: str, *, silence_ok: bool = False, **kwargs: Any
    ) -> requests.Response:
        """One call; failures become one-line errors. `silence_ok`: a read timeout propagates
        as requests.ReadTimeout (a stream that has nothing to say yet)."""
        headers = kwargs.pop("headers", {})
        timeout = kwargs.pop("timeout", self.timeout)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self.session.request(
                method, f"{self.url}/v1{path}", headers=headers, timeout=timeout, **kwargs
            )
        except requests.ReadTimeout:
            if silence_ok:
                raise
            raise click.ClickException(
                f"the catalog at {self.url} did not answer in time"
            ) from None
        except requests.ConnectionError:
            raise click.ClickException(
                f"cannot connect to the catalog at {self.url}; start it with `make run` "
                "or `catalogctl up`, or set --url / CATALOG_URL"
            ) from None
        except requests.Timeout:
            raise click.ClickException(
                f"the catalog at {self.url} did not answer in time"
            ) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema):  # fmt: skip
            raise click.ClickException(
                f"{self.url!r} is not a catalog address like {DEFAULT_URL} (--url / CATALOG_URL)"
            ) from None
        except requests.RequestException as exc:
            raise click.ClickException(f"the request to {self.url} failed: {exc}") from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            response.close()
            raise ApiError(response.status_code, body, response.reason or "request failed")
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def json_with_etag(self, method: str, path: str, **kwargs: Any) -> tuple[Any, str | None]:
        """The JSON body and the ETag header (the draft version for If-Match)."""
        response = self.request(method, path, **kwargs)
        return (response.json() if response.content else None), response.headers.get("ETag")

    def pages(self, path: str, params: dict[str, Any], limit: int | None) -> list[dict]:
        """Items of a keyset-paginated list, following `next_cursor` up to `limit` (None: all)."""
        items: list[dict] = []
        cursor = None
        while True:
            wanted = 200 if limit is None else min(200, limit - len(items))
            page = self.json("GET", path, params={**params, "limit": wanted, "cursor": cursor})
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor or (limit is not None and len(items) >= limit):
                return items

    def upload(
        self, archive: BinaryIO, *, visibility: str = "private", categories: Sequence[str] = ()
    ) -> Any:
        params: dict[str, str] = {"visibility": visibility}
        if categories:
            params["categories"] = ",".join(categories)
        return self.json("POST", "/packages", params=params, files={"file": archive})

    def stream(
        self, path: str, params: dict[str, Any], read_timeout: float | None = None
    ) -> Generator[ServerEvent, None, None]:
        """Server-sent events of a `follow=1` route, until the server ends the stream.

        `read_timeout` bounds a silence (requests.ReadTimeout, or ConnectionError from the
        body); the caller decides whether to reconnect.
        """
        response = self.request(
            "GET",
            path,
            params={**params, "follow": 1},
            headers={"Accept": "text/event-stream"},
            stream=True,
            silence_ok=read_timeout is not None,
            timeout=(10, read_timeout),
        )
        with response:
            _default_utf8(response)
            yield from parse_events(response.iter_lines(decode_unicode=True))

    def raw_lines(
        self, path: str, params: dict[str, Any], read_timeout: float | None = None
    ) -> Iterator[str]:
        """The body as lines while it arrives (plain-text streams such as logs)."""
        response = self.request(
            "GET",
            path,
            params=params,
            stream=True,
            timeout=(10, read_timeout),
            silence_ok=read_timeout is not None,
        )
        with response:
            _default_utf8(response)
            if response.headers.get("Content-Type", "").startswith("text/event-stream"):
                for event in parse_events(response.iter_lines(decode_unicode=True)):
                    yield event.data if isinstance(event.data, str) else json.dumps(event.data)
                return
            yield from response.iter_lines(decode_unicode=True)


def _default_utf8(response: requests.Response) -> None:
    """Text without a declared charset is UTF-8 here (requests would assume ISO-8859-1)."""
    if "charset" not in response.headers.get("Content-Type", ""):
        response.encoding = "utf-8"


def parse_events(lines: Iterator[str]) -> Iterator[ServerEvent]:
    """The text/event-stream format: fields until a blank line. A comment line (the server's
    keep-alive) comes out as an event of kind "comment" with no data, so that a follower
    learns the stream is alive and can look around."""
    data: list[str] = []
    event_id, kind = None, "message"
    for line in lines:
        if line is None:
            continue
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    payload = json.loads(text)
                except ValueError:
                    payload = text
                yield ServerEvent(event_id, kind, payload)
            event_id, kind, data = None, "message", []
            continue
        if line.startswith(":"):
            yield ServerEvent(None, "comment", None)
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "event":
            kind = value
        elif name == "data":
            data.append(value)
