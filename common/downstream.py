"""The one HTTP client for calls between services, with the contract's error mapping.

A downstream failure becomes an `ApiError` the public API can answer with directly:
- 502: the service answered a 5xx, or a body that is not a JSON object, or one too large, or
  broke off its answer (closed the connection mid-answer, or spoke something that is not HTTP);
- 503: the service cannot be reached (refused, reset, unknown host);
- 504: it did not answer within the connect or the total timeout;
- a 4xx is passed on with the service's own messages: it is the caller's mistake; except a
  401/403, which says our internal token is wrong: 502, since the client can do nothing about it.

`AsyncHTTPClient` is one instance per IOLoop, so `configure_http_client()` is called once at
start-up, and each call looks the instance up rather than holding one.
"""
from __future__ import annotations

import json
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.iostream import StreamClosedError
from tornado.simple_httpclient import HTTPStreamClosedError

from common.errors import ApiError
from common.logs import request_id_var

log = logging.getLogger(__name__)

MAX_CLIENTS = 200
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
_TIMEOUT_CODES = {28}  # libcurl's CURLE_OPERATION_TIMEDOUT, when the curl client is in use
# libcurl's codes for an answer that was reached but broken: weird server reply, partial file,
# got nothing, receive error, file size exceeded (the response size limit).
_BROKEN_ANSWER_CODES = {8, 18, 52, 56, 63}


def configure_http_client(max_clients: int = MAX_CLIENTS) -> None:
    """Pick and size the process-wide AsyncHTTPClient; call before anything creates it."""
    AsyncHTTPClient.configure(None, max_clients=max_clients, max_body_size=MAX_RESPONSE_BYTES)


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

    async def post_form(self, path: str, fields: Mapping[str, Any], *, key: str) -> Any:
        """POST `fields` form-encoded to `path` and return the answer's `key`."""
        return await self._call(self._form_request("POST", path, fields), key)

    async def patch_form(self, path: str, fields: Mapping[str, Any], *, key: str) -> Any:
        """PATCH `fields` form-encoded to `path` and return the answer's `key`."""
        return await self._call(self._form_request("PATCH", path, fields), key)

    async def delete(self, path: str) -> None:
        """DELETE `path`; the service answers 204 with no body."""
        request = HTTPRequest(self.base_url.rstrip("/") + path, "DELETE", headers=self._headers())
        await self._call(request, None)

    def _form_request(self, method: str, path: str, fields: Mapping[str, Any]) -> HTTPRequest:
        headers = self._headers()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return HTTPRequest(self.base_url.rstrip("/") + path, method,
                           headers=headers, body=urlencode(fields))

    def _headers(self) -> dict[str, str]:
        headers = {"X-Request-ID": request_id_var.get(), "Accept": "application/json"}
        if self.internal_token:
            headers["X-Internal-Token"] = self.internal_token
        return headers

    async def _call(self, request: HTTPRequest, key: str | None) -> Any:
        """Send `request`; `key` names the answer's value, None when a bodiless 204 is due."""
        request.connect_timeout = self.connect_timeout
        request.request_timeout = self.request_timeout
        # Once a status line has arrived the service was reached: a connection dropped after
        # it (an answer over MAX_RESPONSE_BYTES, a body cut short) is a bad answer, not a 503.
        answered: list[str] = []
        request.header_callback = answered.append
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except HTTPClientError as error:  # tornado raises these even with raise_error=False
            if error.code == 599 and _is_timeout(error):
                raise self._fail(504, "did not answer in time", error)
            if answered or _is_broken_answer(error):
                raise self._fail(502, "answered with a body that could not be read", error)
            raise self._fail(503, "cannot be reached", error)
        except (OSError, StreamClosedError, socket.gaierror) as error:
            raise self._fail(503, "cannot be reached", error)
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
            body = json.loads(response.body)
        except (ValueError, RecursionError):
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


def _is_timeout(error: BaseException | None) -> bool:
    if error is None:
        return False
    errno = getattr(error, "errno", None)
    return "Timeout" in type(error).__name__ or errno in _TIMEOUT_CODES


def _is_broken_answer(error: HTTPClientError) -> bool:
    """Reached, but what came back was not a readable HTTP answer (bytes that are not HTTP,
    nothing at all, a connection closed mid-answer): the simple client closes the stream."""
    return (isinstance(error, HTTPStreamClosedError)
            or getattr(error, "errno", None) in _BROKEN_ANSWER_CODES)
