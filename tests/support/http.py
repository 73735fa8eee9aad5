"""One real HTTP request from a test, and the JSON answer it must get."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPResponse


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any


async def call(method: str, url: str, *, json_body: Any = None, form: dict | None = None,
               body: bytes | str | None = None, headers: dict | None = None) -> Reply:
    """One real HTTP request; the answer must be JSON (or empty for 204) whatever its status."""
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body)
        headers.setdefault("Content-Type", "application/json")
    elif form is not None:
        body = urlencode(form)
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    if body is None and method in ("POST", "PUT", "PATCH"):
        body = b""
    response: HTTPResponse = await AsyncHTTPClient().fetch(
        url, method=method, body=body, headers=headers, raise_error=False,
        allow_nonstandard_methods=True, request_timeout=20)
    if response.code == 204:
        return Reply(204, None, response.headers)
    assert response.headers.get("Content-Type") == "application/json; charset=UTF-8", response.body
    return Reply(response.code, json.loads(response.body), response.headers)
