"""Bearer tokens of the public API: JWTs (PyJWT), HS256, signed with one shared secret.

A token says "user `sub` logged in at `iat`; believe it until `exp`". Checking one needs
no call to another service: the signature and the claims are all there is. So a token
issued before its user changed their password stays valid until it expires (the decision
of issue #13: stateless and simple; --token_ttl bounds the exposure, an hour by default;
tests/test_tokens.py pins it). Revoking earlier would need state every check consults.

Only HS256 is accepted on decoding, whatever the token's header claims: `alg: none` and
any other algorithm are refused, as is a token without exp, iat or sub.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

import jwt

from common.errors import ApiError

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash output
DEFAULT_TTL = 3600
REALM = 'Bearer realm="public-api"'


def random_secret() -> str:
    return secrets.token_urlsafe(MIN_SECRET_BYTES)


def unauthorized(message: str, error: str | None = None) -> ApiError:
    """A 401 naming Authorization, with the RFC 6750 challenge (its error code when the
    client sent a token that failed; none when it sent no bearer token at all)."""
    challenge = REALM if error is None else f'{REALM}, error="{error}"'
    return ApiError(401, [f"Authorization: {message}"], {"WWW-Authenticate": challenge})


@dataclass(frozen=True)
class Tokens:
    """Issues and checks the public API's tokens."""

    secret: str = field(default_factory=random_secret, repr=False)
    ttl: int = DEFAULT_TTL  # seconds a token lives

    def __post_init__(self) -> None:
        if len(self.secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the token secret must be at least {MIN_SECRET_BYTES} bytes")

    def issue(self, user_id: int, now: float | None = None) -> tuple[str, int]:
        """A token for `user_id` and when it expires, in microseconds since the epoch."""
        issued = int(time.time() if now is None else now)
        expires = issued + self.ttl
        token = jwt.encode({"sub": str(user_id), "iat": issued, "exp": expires},
                           self.secret, algorithm=ALGORITHM)
        return token, expires * 1_000_000

    def user_of(self, authorization: str | None) -> int | None:
        """The user id of the `Authorization` header's bearer token; None without the header;
        a 401 for any other scheme or any token that is not one of ours, valid now."""
        if authorization is None:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise unauthorized("must be 'Bearer <token>' (POST /public-api/tokens gives one)")
        token = token.strip()
        try:
            claims = jwt.decode(token, self.secret, algorithms=[ALGORITHM],
                                options={"require": ["exp", "iat", "sub"]})
        except jwt.ExpiredSignatureError:
            raise unauthorized("the token has expired", "invalid_token")
        except jwt.InvalidTokenError:
            raise unauthorized("the token is not valid", "invalid_token")
        sub = claims["sub"]
        if not (isinstance(sub, str) and sub.isascii() and sub.isdigit() and len(sub) <= 19
                and int(sub) >= 1):
            raise unauthorized("the token is not valid", "invalid_token")
        return int(sub)

    def required(self, authorization: str | None) -> int:
        """Like `user_of`, but a 401 without the header too."""
        user_id = self.user_of(authorization)
        if user_id is None:
            raise unauthorized("a bearer token is required (POST /public-api/tokens gives one)")
        return user_id
