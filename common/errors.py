"""The errors every failure becomes before it reaches a client.

- `ApiError` is an HTTP answer: handlers, validators and the downstream client raise it.
- `NotFound` and `Changed` are domain errors: the stores raise them and know nothing of HTTP.

`JsonHandler.write_error` is the only place that turns any of them (or any other exception)
into a response; `http_error` is the one table from domain errors to statuses.
"""
from __future__ import annotations

from tornado.web import HTTPError


class ApiError(HTTPError):
    """An HTTP error with the list of human-readable messages the client receives."""

    def __init__(self, status: int, errors: list[str],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, "; ".join(errors))
        self.errors = errors
        # Headers the answer needs (WWW-Authenticate on a 401, Retry-After on a 429): set by
        # write_error, after send_error has cleared any set before the raise.
        self.headers = headers or {}


class NotFound(LookupError):
    """A lookup by id that found nothing."""

    def __init__(self, what: str, ident: int) -> None:
        super().__init__(f"{what} {ident} does not exist")
        self.what = what
        self.ident = ident


class Changed(Exception):
    """A conditional write (If-Match) found the record at another version: nothing was written."""

    def __init__(self, what: str, ident: int) -> None:
        super().__init__(f"If-Match: {what} {ident} has changed since that ETag; nothing was"
                         f" changed: GET it again for its current ETag")


# Domain error -> HTTP status, in the order they are tried.
DOMAIN_STATUSES: dict[type[Exception], int] = {NotFound: 404, Changed: 412}


def http_error(error: BaseException | None) -> ApiError | None:
    """The HTTP answer for `error` if it is an `ApiError` or a domain error, else None."""
    if isinstance(error, ApiError):
        return error
    for kind, status in DOMAIN_STATUSES.items():
        if isinstance(error, kind):
            return ApiError(status, [str(error)])
    return None
