"""The one exception every failure becomes before it reaches a client.

Handlers, validators and the downstream client raise `ApiError`; `JsonHandler.write_error`
is the only place that turns it (or any other exception) into a response.
"""
from tornado.web import HTTPError


class ApiError(HTTPError):
    """An HTTP error with the list of human-readable messages the client receives."""

    def __init__(self, status: int, errors: list[str]) -> None:
        super().__init__(status, "; ".join(errors))
        self.errors = errors


class NotFound(ApiError):
    """A lookup by id that found nothing."""

    def __init__(self, what: str, ident: int) -> None:
        super().__init__(404, [f"{what} {ident} does not exist"])
