"""The one HTTP client for calls between services, with the contract's error mapping.

A downstream failure becomes an `ApiError` the public API can answer with directly:
- 502: the service answered a 5xx, or a body that is not a JSON object, or one too large,
  or broke the connection instead of answering (as nginx does for a premature close);
- 503: the service cannot be reached (refused, unknown host);
- 504: it did not answer within the connect or the total timeout;
- a 4xx is passed on with the service's own messages: it is the caller's mistake; except a
  401/403, which says our internal token is wrong: 502, since the client can do nothing about it.

The client is `common.keepalive.KeepAliveHTTPClient`, a tornado AsyncHTTPClient that keeps
connections to the services alive and reuses them: tornado's default client opens one per
call, and libcurl's (`CurlAsyncHTTPClient`, used before) cost the public API more CPU per
page (common/keepalive.py gives the measured figures). Its failures are those of tornado's
own client: `HTTPTimeoutError` (504), the `OSError` of a connect that failed (503),
anything else without a usable answer (502).
Tornado keeps one client per IOLoop (and class), so each call looks it up with `http_client()`
rather than holding one. Tornado's default `AsyncHTTPClient` is left alone for other uses
(tests' own requests); `configure_http_client()` sizes it.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.simple_httpclient import HTTPTimeoutError

from common.errors import ApiError
from common.keepalive import KeepAliveHTTPClient
from common.logs import request_id_var
from common.validation import IfMatch

log = logging.getLogger(__name__)

MAX_CLIENTS = 200
# Connections to one service at once; more calls wait in line (within their timeout) rather
# than overflow its listen backlog (common.server.LISTEN_BACKLOG), where a dropped SYN is
# resent only after a second. 64 is four times what `make bench` ever keeps busy.
MAX_PER_SERVICE = 64
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# A connect that failed: refused, no route, unknown host. These OSErrors come before a
# connection exists; the ones of a connection broken mid-answer are a bad answer (502).
_BROKEN = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
# Garbage, nothing at all, a reset mid-answer, a body over MAX_RESPONSE_BYTES:
_BAD_ANSWER = (502, "gave an answer that could not be read")


def configure_http_client(max_clients: int = MAX_CLIENTS) -> None:
    """Size tornado's default AsyncHTTPClient; call before anything creates it."""
    AsyncHTTPClient.configure(None, max_clients=max_clients, max_body_size=MAX_RESPONSE_BYTES)


def http_client() -> KeepAliveHTTPClient:
    """This IOLoop's client for calls between services (created on first use)."""
    return KeepAliveHTTPClient(max_clients=MAX_CLIENTS, max_per_host=MAX_PER_SERVICE,
                               max_body_size=MAX_RESPONSE_BYTES)


def _failure_status(error: HTTPClientError | OSError) -> tuple[int, str]:
    """The status and wording for a call that got no usable answer."""
    if isinstance(error, HTTPTimeoutError):  # the connect or the total timeout
        return 504, "did not answer in time"
    if isinstance(error, OSError) and not isinstance(error, _BROKEN):
        return 503, "cannot be reached"
    return _BAD_ANSWER


@dataclass(frozen=True)
class ServiceClient:
    """Calls one downstream service: JSON answers in, form-encoded bodies out."""

    name: str
    base_url: str
    connect_timeout: float = 1.0
    request_timeout: float = 5.0
    internal_token: str = ""

    async def get(self, path: str, query: Mapping[str, Any] | None = None, *, key: str) -> Any:
        """GET `path` and return the value under `key` in its JSON answer."""
        url = self.base_url.rstrip("/") + path
        if query:
            url += "?" + urlencode(query)
        return await self._call(HTTPRequest(url, "GET", headers=self._headers()), key)

    async def post_form(self, path: str, fields: Mapping[str, Any], *, key: str,
                        if_match: IfMatch | None = None) -> Any:
        """POST `fields` form-encoded to `path` (conditionally, as PATCH) and return the
        answer's `key`."""
        return await self._call(self._form_request("POST", path, fields, if_match), key)

    async def patch_form(self, path: str, fields: Mapping[str, Any], *, key: str,
                         if_match: IfMatch | None = None) -> Any:
        """PATCH `fields` form-encoded to `path` (only at the versions `if_match` names, if
        given: the service checks and writes at once) and return the answer's `key`."""
        return await self._call(self._form_request("PATCH", path, fields, if_match), key)

    async def delete(self, path: str, if_match: IfMatch | None = None) -> None:
        """DELETE `path` (conditionally, as PATCH); the service answers 204 with no body."""
        request = HTTPRequest(self.base_url.rstrip("/") + path, "DELETE",
                              headers=self._headers(if_match))
        await self._call(request, None)

    def _form_request(self, method: str, path: str, fields: Mapping[str, Any],
                      if_match: IfMatch | None = None) -> HTTPRequest:
        headers = self._headers(if_match)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return HTTPRequest(self.base_url.rstrip("/") + path, method,
                           headers=headers, body=urlencode(fields))

    def _headers(self, if_match: IfMatch | None = None) -> dict[str, str]:
        headers = {"X-Request-ID": request_id_var.get(), "Accept": "application/json"}
        if self.internal_token:
            headers["X-Internal-Token"] = self.internal_token
        if if_match is not None:
            headers["If-Match"] = if_match.header
        return headers

    async def _call(self, request: HTTPRequest, key: str | None) -> Any:
        """Send `request`; `key` names the answer's value, None when a bodiless 204 is due."""
        request.connect_timeout = self.connect_timeout
        request.request_timeout = self.request_timeout
        try:
            response = await http_client().fetch(request, raise_error=False)
        except (HTTPClientError, OSError) as error:  # raised even with raise_error=False
            raise self._fail(*_failure_status(error), error)
        return self._decode(response, key)

    def _decode(self, response: HTTPResponse, key: str | None) -> Any:
        if response.code >= 500:
            raise self._fail(502, f"answered {response.code}", None)
        if response.code in (401, 403):
            # Our internal token is missing or wrong: a fault of this deployment, not the client's.
            raise self._fail(502, f"refused our credentials ({response.code})", None)
        if key is None and response.code == 204:
            return None
        try:
            body = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise self._fail(502, f"answered {response.code} with a body that is not JSON", None)
        if response.code >= 400:
            errors = body.get("errors")
            if not isinstance(errors, list) or not all(isinstance(e, str) for e in errors):
                errors = [f"{self.name} service refused the request ({response.code})"]
            raise ApiError(response.code, errors)
        if key is None:
            raise self._fail(502, f"answered {response.code} where 204 was due", None)
        if key not in body:
            raise self._fail(502, f"answered without '{key}'", None)
        return body[key]

    def _fail(self, status: int, what: str, cause: BaseException | None) -> ApiError:
        log.warning("%s service %s (%s): %s", self.name, what, self.base_url, cause or "")
        return ApiError(status, [f"{self.name} service {what}"])

