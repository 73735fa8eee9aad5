"""The public API's bearer tokens (common/tokens.py): what is accepted, what is a 401."""
from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from common.errors import ApiError
from common.tokens import Tokens

SECRET = "test-secret-" + "x" * 64  # long enough for HS512, so only the algorithm differs
TOKENS = Tokens(SECRET, ttl=60)


def refused(tokens: Tokens, header: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        tokens.user_of(header)
    error = caught.value
    assert error.status_code == 401
    assert error.errors[0].startswith("Authorization: ")
    assert error.headers["WWW-Authenticate"].startswith("Bearer ")
    return error


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_token_issued_is_accepted_and_names_its_user() -> None:
    token, expires_at = TOKENS.issue(42)
    assert TOKENS.user_of(f"Bearer {token}") == 42
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert set(claims) == {"sub", "iat", "exp"} and claims["sub"] == "42"
    assert expires_at == claims["exp"] * 1_000_000 and claims["exp"] - claims["iat"] == 60
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_no_header_is_no_caller_but_required_is_a_401() -> None:
    assert TOKENS.user_of(None) is None
    with pytest.raises(ApiError) as caught:
        TOKENS.required(None)
    assert caught.value.status_code == 401
    assert caught.value.headers == {"WWW-Authenticate": 'Bearer realm="public-api"'}


@pytest.mark.parametrize("header", ["nonsense", "Bearer", "Bearer nonsense", "Basic dXNlcjpwdw==",
                                    "Bearer a.b.c", "Bearer " + "e" * 5000])
def test_malformed_headers_are_401(header: str) -> None:
    refused(TOKENS, header)


def test_a_tampered_signature_is_401() -> None:
    token, _ = TOKENS.issue(1)
    head, body, signature = token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    error = refused(TOKENS, f"Bearer {head}.{body}.{flipped}")
    assert 'error="invalid_token"' in error.headers["WWW-Authenticate"]
    # The payload changed to another user, the signature kept: refused too.
    forged = b64({"sub": "2", "iat": int(time.time()), "exp": int(time.time()) + 60})
    refused(TOKENS, f"Bearer {head}.{forged}.{signature}")


def test_a_token_signed_with_another_secret_is_401() -> None:
    other, _ = Tokens("another-secret-" + "y" * 32).issue(1)
    refused(TOKENS, f"Bearer {other}")


def test_alg_none_is_401() -> None:
    claims = {"sub": "1", "iat": int(time.time()), "exp": int(time.time()) + 60}
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    error = refused(TOKENS, f"Bearer {unsigned}")
    assert 'error="invalid_token"' in error.headers["WWW-Authenticate"]
    refused(TOKENS, f"Bearer {jwt.encode(claims, None, algorithm='none')}")


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_another_algorithm_is_401_even_with_the_right_secret(algorithm: str) -> None:
    claims = {"sub": "1", "iat": int(time.time()), "exp": int(time.time()) + 60}
    refused(TOKENS, f"Bearer {jwt.encode(claims, SECRET, algorithm=algorithm)}")


def test_an_expired_token_is_401_saying_so() -> None:
    token, _ = TOKENS.issue(1, now=time.time() - 61)
    error = refused(TOKENS, f"Bearer {token}")
    assert error.errors == ["Authorization: the token has expired"]
    assert error.headers["WWW-Authenticate"] == 'Bearer realm="public-api", error="invalid_token"'


@pytest.mark.parametrize("missing", ["sub", "iat", "exp"])
def test_a_token_without_a_required_claim_is_401(missing: str) -> None:
    claims = {"sub": "1", "iat": int(time.time()), "exp": int(time.time()) + 60}
    del claims[missing]
    refused(TOKENS, f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}")


@pytest.mark.parametrize("sub", ["0", "-1", "one", "1.5", "99999999999999999999", "١"])
def test_a_sub_that_is_no_user_id_is_401(sub: str) -> None:
    claims = {"sub": sub, "iat": int(time.time()), "exp": int(time.time()) + 60}
    refused(TOKENS, f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}")


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        Tokens("short")
