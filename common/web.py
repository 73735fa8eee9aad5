"""The JSON request handler all three services build on, and the application factory.

Everything a client can get wrong is caught here once: unknown routes and methods, bodies
over the size limit, wrong Content-Types, undecodable forms and JSON, repeated parameters.
`JsonHandler.write_error` is the one place any failure becomes a response, always JSON.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from tornado.httputil import HTTPServerRequest, split_host_and_port
from tornado.routing import PathMatches
from tornado.web import Application, HTTPError, RequestHandler, stream_request_body

from common.errors import ApiError, http_error
from common.logs import log_request, request_id_var
from common.validation import IfMatch, parse_if_match

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_SIZE = 1024 * 1024
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# A client's request id is echoed into our logs and headers, so only a tame one is trusted.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# CORS (the Fetch standard, "CORS protocol"). What a browser may send in a preflighted request
# and what a page's script may read of an answer beyond the CORS-safelisted headers.
CORS_ALLOW_HEADERS = "Authorization, Content-Type, X-Request-ID, If-None-Match, If-Match"
CORS_EXPOSE_HEADERS = "ETag, X-Request-ID, Retry-After, WWW-Authenticate, Location"
# How long a browser may cache a preflight: Chromium caps it at 2 hours, Firefox at 24.
CORS_MAX_AGE = 7200


def cors_origins(value: str | Iterable[str]) -> frozenset[str]:
    """The origins of `--cors_origins`: a comma-separated list, "*" for any, "" for none.

    An origin is scheme://host[:port], as a browser sends it in `Origin`: no path, no
    trailing slash (such an entry could never match, so it is refused here).
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    origins = frozenset(item.strip() for item in items if item.strip())
    for origin in origins - {"*"}:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or origin != (
                f"{parts.scheme}://{parts.netloc}"):
            raise ValueError(f"--cors_origins: {origin!r} is not an origin like"
                             " http://127.0.0.1:8500 (scheme, host, port; no path)")
    if "*" in origins and len(origins) > 1:
        raise ValueError("--cors_origins: '*' allows every origin; give it alone")
    return origins


def dumps(body: Any) -> bytes:
    """The JSON encoding of every response body: compact UTF-8, by orjson (the bench: up to 15%)."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        # A lone surrogate (say, an unknown field's name quoted in an error) is not UTF-8:
        # escaped by the standard library, it still reaches the client as valid JSON.
        return json.dumps(body, separators=(",", ":")).encode("ascii")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A key given twice is refused, as a repeated form field or query parameter is, rather
    # than silently keeping the last value.
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _RepeatedKey(key)
        seen.add(key)
    return dict(pairs)


class InFlight:
    """Counts requests being handled, so a shutdown can wait for them to finish."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if not self.count:
            self._idle.set()

    async def idle(self) -> None:
        """Return once no request is in flight."""
        await self._idle.wait()


@stream_request_body
class JsonHandler(RequestHandler):
    """Base for every handler: JSON in, JSON out, one error path.

    Bodies are streamed so that an oversized one is refused (413) from its headers, or
    dropped chunk by chunk, instead of being read into memory whole.
    """

    requires_token = True  # health checks set False: they stay open without the token

    _body: bytes | bytearray = b""
    _etag: str | None = None
    _cors_allowed = False  # the answer carries Access-Control-Allow-Origin
    request_id: str | None = None
    _body_too_large = False
    _counted = False

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        # Names are stored verbatim, `<script>` included: no browser may sniff them as HTML.
        self.set_header("X-Content-Type-Options", "nosniff")
        keep_alive = self.settings.get("keep_alive")
        if keep_alive:
            self.set_header("Keep-Alive", keep_alive)
        # First called from __init__, before tornado refuses an unknown method or a path that
        # is not UTF-8: those answers and their log lines carry the request id too. Called
        # again by send_error's clear(): error answers keep it.
        if self.request_id is None:
            incoming = self.request.headers.get("X-Request-ID", "")
            self.request_id = (incoming if _SAFE_REQUEST_ID.fullmatch(incoming)
                               else uuid.uuid4().hex)
            request_id_var.set(self.request_id)
        self.set_header("X-Request-ID", self.request_id)
        self._set_cors_headers()

    def _set_cors_headers(self) -> None:
        """CORS on every answer, errors included (send_error's clear() calls us again).

        With a list of origins, the answer depends on `Origin` (Vary says so); an origin not
        in it gets no CORS header at all, and the browser withholds the answer from the page.
        With "*", every answer is the same: no Vary, no credentials (tokens travel in
        Authorization, set by the page's script; no cookie is used, so no
        Access-Control-Allow-Credentials).
        """
        origins = self.settings.get("cors_origins")
        if not origins:
            return
        if "*" in origins:
            self.set_header("Access-Control-Allow-Origin", "*")
        else:
            self.add_header("Vary", "Origin")
            origin = self.request.headers.get("Origin")
            if origin is None or origin not in origins:
                return
            self.set_header("Access-Control-Allow-Origin", origin)
        self.set_header("Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS)
        self._cors_allowed = True

    def prepare(self) -> None:
        self.settings["inflight"].enter()
        self._counted = True
        self._body = bytearray()
        assert self.request_id is not None  # set_default_headers, from __init__, set it
        request_id_var.set(self.request_id)  # in the task that handles the request
        self._check_token()
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.settings["max_body_size"]:
            raise self._too_large()

    def _check_token(self) -> None:
        expected = self.settings.get("internal_token")
        if not expected or not self.requires_token:
            return
        given = self.request.headers.get("X-Internal-Token", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise ApiError(401, ["X-Internal-Token: missing or wrong"])

    def _too_large(self) -> ApiError:
        limit = self.settings["max_body_size"]
        return ApiError(413, [f"body: larger than the limit of {limit} bytes"])

    def data_received(self, chunk: bytes) -> None:
        if self._body_too_large:
            return
        if len(self._body) + len(chunk) > self.settings["max_body_size"]:
            self._body_too_large = True
            self._body = b""
            return
        self._body += chunk

    def on_finish(self) -> None:
        self._uncount()

    def on_connection_close(self) -> None:
        # A client that leaves before its body is complete never reaches finish(): without
        # this, it would stay "in flight" and hold a shutdown for the whole grace period.
        self._uncount()
        super().on_connection_close()

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            self.settings["inflight"].leave()

    # --- reading input -------------------------------------------------------------------

    def _body_of(self, media_type: str) -> bytes:
        if self._body_too_large:
            raise self._too_large()
        given = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if given != media_type:
            shown = given or "missing"
            raise ApiError(415, [f"Content-Type: must be {media_type}, not {shown}"])
        return bytes(self._body)

    def if_match(self) -> IfMatch | None:
        """The If-Match header, parsed (400 naming it if malformed); None when absent."""
        return parse_if_match(self.request.headers.get("If-Match"))

    def query_fields(self) -> dict[str, str]:
        """The query string, one value per parameter."""
        return _single_values(self.request.query, "query string")

    def form_fields(self) -> dict[str, str]:
        """A form-encoded body, one value per field."""
        try:
            # curl -d 'name=Zoë' sends raw UTF-8 rather than percent-encoding it: accept both.
            text = self._body_of(FORM).decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, ["body: is not valid UTF-8"])
        return _single_values(text, "body")

    def json_object(self) -> dict[str, Any]:
        """A JSON body that must be an object."""
        body = self._body_of(JSON)
        try:
            value = json.loads(body.decode("utf-8"), parse_constant=_reject_constant,
                               object_pairs_hook=_object_without_repeats)
        except UnicodeDecodeError:
            raise ApiError(400, ["body: is not valid UTF-8"])
        except _RepeatedKey as repeated:
            raise ApiError(400, [f"{repeated.key}: is given more than once"])
        except (ValueError, RecursionError):
            raise ApiError(400, ["body: is not valid JSON"])
        if not isinstance(value, dict):
            raise ApiError(400, ["body: must be a JSON object"])
        return value

    # --- writing output ------------------------------------------------------------------

    def send_json(self, body: Mapping[str, Any], status: int = 200,
                  etag: str | None = None) -> None:
        """`body` as JSON. `etag`: the record's own entity tag instead of a hash of the body
        (one that If-Match can name); tornado still answers If-None-Match with a 304."""
        self.set_status(status)
        if etag is not None:
            self._etag = etag
            if self.request.method not in ("GET", "HEAD"):  # tornado sets it for those
                self.set_header("Etag", etag)
        self.finish(dumps(body))

    def compute_etag(self) -> str | None:
        return self._etag if self._etag is not None else super().compute_etag()

    def send_rows(self, key: str, rows: list[str]) -> None:
        """`{"result": true, key: [rows]}`, the rows being JSON objects SQLite already wrote."""
        self.finish(b'{"result":true,"' + key.encode() + b'":[' + ",".join(rows).encode() + b"]}")

    def no_content(self) -> None:
        """204 with no body (and so no Content-Type): the one success that is not JSON."""
        self.set_status(204)
        self.clear_header("Content-Type")
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        answer = http_error(error)
        if answer is not None:
            # A domain error reaches here as an uncaught exception, so tornado set 500 first.
            self.set_status(answer.status_code)
            errors = answer.errors
            for name, value in answer.headers.items():
                self.set_header(name, value)
        elif status_code == 405:
            allowed = self._allowed_methods()
            self.set_header("Allow", ", ".join(allowed))
            use = " or ".join(allowed)
            errors = [f"method: {self.request.method} is not allowed here; use {use}"]
        elif isinstance(error, HTTPError) and status_code < 500:
            errors = [f"request: {self._reason}"]
        else:
            errors = ["internal error: the service failed; it has been logged"]
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(dumps({"result": False, "errors": errors}))

    def log_exception(self, typ: type[BaseException] | None, value: BaseException | None,
                      tb: TracebackType | None) -> None:
        # The access line already records every 4xx/5xx answer; only real bugs need more.
        if value is not None and not isinstance(value, HTTPError) and http_error(value) is None:
            log.error("uncaught exception in %s %s", self.request.method, self.request.path,
                      exc_info=value)

    async def head(self, *args: str) -> None:
        """HEAD wherever GET is served (RFC 9110, 9.3.2): GET's status and headers, no body
        (tornado drops the body of an answer to HEAD, keeping its Content-Length)."""
        if not self._serves("GET"):
            raise HTTPError(405)
        answered = self.get(*args)
        if answered is not None:
            await answered

    def options(self, *args: str) -> None:
        """OPTIONS on every route once CORS is on (a 405 otherwise, as before): 204 with
        `Allow`; to a preflight from an allowed origin, also the methods and headers a page
        may use (set_default_headers set Allow-Origin, or left it out for any other origin:
        the browser then refuses, and this is no error of ours)."""
        if not self._serves("OPTIONS"):
            raise HTTPError(405)
        self._answer_options(self._allowed_methods())

    def _answer_options(self, methods: list[str]) -> None:
        self.set_header("Allow", ", ".join(methods))
        if self._is_preflight():
            self.set_header("Access-Control-Allow-Methods",
                            ", ".join(m for m in methods if m != "OPTIONS"))
            self.set_header("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS)
            self.set_header("Access-Control-Max-Age", str(CORS_MAX_AGE))
            self.clear_header("Access-Control-Expose-Headers")  # for actual answers only
        self.no_content()

    def _is_preflight(self) -> bool:
        """A CORS preflight from an allowed origin (which set_default_headers answered)."""
        return (self.request.method == "OPTIONS" and self._cors_allowed
                and "Access-Control-Request-Method" in self.request.headers)

    def _serves(self, method: str, handler: type[RequestHandler] | None = None) -> bool:
        """Whether `handler` (this one's class by default) answers `method`."""
        handler = handler or type(self)
        if method == "OPTIONS":
            return bool(self.settings.get("cors_origins")) and any(
                self._serves(m, handler) for m in ("GET", "POST", "PATCH", "PUT", "DELETE"))
        if method == "HEAD":
            method = "GET"
        return getattr(handler, method.lower()) is not getattr(RequestHandler, method.lower())

    def _allowed_methods(self, handler: type[RequestHandler] | None = None) -> list[str]:
        return [method for method in self.SUPPORTED_METHODS if self._serves(method, handler)]


class NotFoundHandler(JsonHandler):
    """Every unknown route answers a JSON 404 (a 401 first when the token is missing: a
    caller without it learns nothing about which routes exist).

    A known route with a trailing slash answers 308 to the path without it, query kept:
    308, not 301, so that a POST or PATCH is resent as it was, body and method. A CORS
    preflight to it is answered as the route's own would be instead: browsers follow a
    redirect of the request itself, never of its preflight.
    """

    def prepare(self) -> None:
        super().prepare()
        path = self.request.path
        handler = self._handler_of(path.rstrip("/")) if path.endswith("/") else None
        if handler is None or not path.strip("/"):
            raise ApiError(404, [f"path: no route for {path}"])
        if self._is_preflight() and self._serves("OPTIONS", handler):
            self._answer_options(self._allowed_methods(handler))
            return
        query = self.request.query
        location = path.rstrip("/") + (f"?{query}" if query else "")
        self.set_header("Location", location)
        self.send_json({"location": location}, 308)

    def _handler_of(self, path: str) -> type[RequestHandler] | None:
        """The handler class routed at `path`, if any."""
        for rule in self.application.wildcard_router.rules:
            if isinstance(rule.matcher, PathMatches) and rule.matcher.regex.match(path):
                target = rule.target
                return target if isinstance(target, type) else None
        return None


class PingHandler(JsonHandler):
    """Liveness: the process answers. Open even when an internal token is set."""

    requires_token = False

    def get(self) -> None:
        self.send_json({"result": True})


class ReadyHandler(JsonHandler):
    """Readiness: `check` (the database, the downstream services) succeeds, else 503."""

    requires_token = False

    def initialize(self, check: Callable[[], Awaitable[object]]) -> None:
        self.check = check

    async def get(self) -> None:
        try:
            await self.check()
        except Exception as error:
            reason = "; ".join(error.errors) if isinstance(error, ApiError) else str(error)
            log.warning("not ready: %s", reason)
            raise ApiError(503, [f"ready: {reason}"]) from error
        self.send_json({"result": True})


def _single_values(text: str, where: str) -> dict[str, str]:
    try:
        values = parse_qs(text, keep_blank_values=True, errors="strict", max_num_fields=100)
    except UnicodeDecodeError:
        raise ApiError(400, [f"{where}: is not valid UTF-8 once percent-decoded"])
    except ValueError:
        raise ApiError(400, [f"{where}: has too many fields"])
    repeated = [f"{key}: is given more than once" for key, vals in values.items() if len(vals) > 1]
    if repeated:
        raise ApiError(400, repeated)
    return {key: vals[0] for key, vals in values.items()}


class JsonApplication(Application):
    """An Application that also routes a request target in absolute form."""

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> Any:
        # RFC 9112, 3.2.2: a server MUST accept `GET http://host/path HTTP/1.1`, the form a
        # proxy is sent; tornado takes the whole URL as the path. Its authority is the Host.
        if request.path.startswith(("http://", "https://")):
            target = urlsplit(request.uri)
            request.host = target.netloc
            request.host_name = split_host_and_port(target.netloc.lower())[0]
            request.path = target.path or "/"
            request.uri = request.path + (f"?{target.query}" if target.query else "")
        return super().find_handler(request, **kwargs)


def json_application(
    routes: list[Any],
    *,
    debug: bool = False,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    internal_token: str = "",
    idle_connection_timeout: float | None = None,
    cors: str | Iterable[str] = (),
) -> Application:
    """An Application that answers JSON to everything; pure, so tests can build it freely.

    `cors`: the origins whose pages may call it (`cors_origins`); none, the default, is what
    the internal services keep: no CORS header, and OPTIONS is a 405 like any other method.
    Answers of 1 KB or more are gzipped when the client accepts it (tornado's transform;
    `make bench` shows what that costs: docs/performance.md).
    """
    return JsonApplication(
        routes,
        default_handler_class=NotFoundHandler,
        autoreload=debug,
        log_function=log_request,
        max_body_size=max_body_size,
        internal_token=internal_token,
        cors_origins=cors_origins(cors),
        compress_response=True,
        inflight=InFlight(),
        # Announced on every answer, so that a client stops reusing a connection before we
        # drop it: a request written onto a closing connection fails, and a POST is not resent.
        keep_alive=(f"timeout={int(idle_connection_timeout)}"
                    if idle_connection_timeout is not None else None),
    )
