"""Who may call what: data services on loopback only, and the optional internal token.

With `INTERNAL_TOKEN` set (or `--internal_token`), the data services answer 401 JSON to any
request without the matching `X-Internal-Token`, except `/ping` (liveness) and `/ready`
(readiness, so that probes need no secret); the public API sends the token and never asks
for one. The token appears in no log line.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.processes import ROOT, Service, Stack, http, start_service, start_stack

TOKEN = "s3cret-Token-4-tests-only"
UNAUTHORIZED = {"result": False, "errors": ["X-Internal-Token: missing or wrong"]}


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port`, as Linux lists them."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


LOOPBACK = "0100007F"  # 127.0.0.1, as /proc/net/tcp writes it


def test_data_services_listen_on_loopback_only_and_the_public_api_everywhere(
        tmp_path: Path) -> None:
    stack = start_stack(tmp_path)
    try:
        assert listening_addresses(stack.listing.port) == {LOOPBACK}
        assert listening_addresses(stack.user.port) == {LOOPBACK}
        assert LOOPBACK not in listening_addresses(stack.public.port)  # all interfaces
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The three services, each taking the token from the environment."""
    started = start_stack(tmp_path_factory.mktemp("token"), "--log_format=json",
                          env={"INTERNAL_TOKEN": TOKEN})
    yield started
    started.stop()


def guarded_requests(stack: Stack) -> list[tuple[str, str, dict | None]]:
    return [("GET", stack.user.url + "/users", None),
            ("GET", stack.user.url + "/users/1", None),
            ("GET", stack.user.url + "/users?ids=1,2", None),
            ("POST", stack.user.url + "/users", {"name": "Intruder"}),
            ("DELETE", stack.user.url + "/users", None),
            ("GET", stack.user.url + "/nowhere", None),
            ("GET", stack.listing.url + "/listings", None),
            ("POST", stack.listing.url + "/listings",
             {"user_id": 1, "listing_type": "rent", "price": 1}),
            ("GET", stack.listing.url + "/nowhere", None)]


@pytest.mark.parametrize("given", [None, "", "wrong", TOKEN[:-1], TOKEN + "x", TOKEN.upper()])
def test_data_services_answer_401_without_the_right_token(
        guarded: Stack, given: str | None) -> None:
    headers = {} if given is None else {"X-Internal-Token": given}
    for method, url, body in guarded_requests(guarded):
        assert http(method, url, body, form=True, headers=headers) == (401, UNAUTHORIZED), url


def test_health_checks_stay_open_without_the_token(guarded: Stack) -> None:
    for url in (guarded.user.url, guarded.listing.url):
        assert http("GET", url + "/ping") == (200, {"result": True})
        assert http("GET", url + "/ready") == (200, {"result": True})
    assert http("GET", guarded.listing.url + "/listings/ping") == (200, {"result": True})


def create_through_the_public_api(stack: Stack) -> dict:
    """A user and a listing made and read through the public API; the user."""
    public = stack.public.url + "/public-api"
    status, body = http("POST", public + "/users", {"name": "Insider"})
    assert status == 201, body
    user = body["user"]
    status, body = http("POST", public + "/listings",
                        {"user_id": user["id"], "listing_type": "sale", "price": 9})
    assert status == 201, body
    status, body = http("GET", f"{public}/listings?user_id={user['id']}")
    assert status == 200 and [listing["user"] for listing in body["listings"]] == [user]
    return user


def test_the_public_api_sends_the_token_and_asks_none_of_its_clients(guarded: Stack) -> None:
    user = create_through_the_public_api(guarded)
    assert http("GET", f"{guarded.user.url}/users/{user['id']}",
                headers={"X-Internal-Token": TOKEN}) == (200, {"result": True, "user": user})


def test_the_token_never_appears_in_a_log_line(guarded: Stack) -> None:
    create_through_the_public_api(guarded)
    http("GET", guarded.user.url + "/users", headers={"X-Internal-Token": TOKEN + "x"})
    guarded.user.stop(signal.SIGKILL)  # failures get logged with their details too
    try:
        assert http("GET", guarded.public.url + "/public-api/listings")[0] == 503
    finally:
        guarded.user.start()
    log = guarded.output()
    assert "tornado.access" in log and "cannot be reached" in log
    assert TOKEN not in log and TOKEN[:8] not in log


def test_a_public_api_with_a_wrong_token_answers_502_not_the_services_401(
        guarded: Stack, tmp_path: Path) -> None:
    public = start_service("public_api.py", tmp_path, f"--user_service_url={guarded.user.url}",
                           f"--listing_service_url={guarded.listing.url}",
                           "--downstream_token=not-the-token")
    try:
        status, body = http("POST", public.url + "/public-api/users", {"name": "Nobody"})
        assert (status, body) == (502, {"result": False, "errors": [
            "user service refused our credentials (401)"]})
    finally:
        public.stop(signal.SIGKILL)


def test_the_token_can_be_given_as_an_option(tmp_path: Path) -> None:
    service: Service = start_service("user_service.py", tmp_path,
                                     f"--db_path={tmp_path / 'users.db'}",
                                     f"--internal_token={TOKEN}", env={"INTERNAL_TOKEN": ""})
    try:
        assert http("GET", service.url + "/users") == (401, UNAUTHORIZED)
        assert http("GET", service.url + "/users", headers={"X-Internal-Token": TOKEN}) == (
            200, {"result": True, "users": []})
    finally:
        service.stop(signal.SIGKILL)


@pytest.mark.parametrize("script, option", [("user_service.py", "--internal_token"),
                                            ("listing_service.py", "--internal_token"),
                                            ("public_api.py", "--downstream_token")])
def test_help_names_each_token_option_and_never_prints_the_secret(script: str,
                                                                  option: str) -> None:
    shown = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True,
                           text=True, env={**os.environ, "INTERNAL_TOKEN": TOKEN}, timeout=30)
    assert option.replace("_", "-") in shown.stdout + shown.stderr  # tornado shows dashes
    assert TOKEN not in shown.stdout + shown.stderr


def test_the_public_api_sends_its_downstream_token_and_requires_none(
        guarded: Stack, tmp_path: Path) -> None:
    # Given as an option, with no INTERNAL_TOKEN in the environment: one meaning per option.
    public = start_service("public_api.py", tmp_path, f"--user_service_url={guarded.user.url}",
                           f"--listing_service_url={guarded.listing.url}",
                           f"--downstream_token={TOKEN}", env={"INTERNAL_TOKEN": ""})
    try:
        status, body = http("POST", public.url + "/public-api/users", {"name": "Tokened"})
        assert status == 201 and body["user"]["name"] == "Tokened"
        with pytest.raises(subprocess.CalledProcessError):  # the data services' option only
            subprocess.run([sys.executable, "public_api.py", "--internal_token=x", "--help"],
                           cwd=ROOT, capture_output=True, check=True, timeout=30)
    finally:
        public.stop(signal.SIGKILL)


def test_the_service_urls_default_from_the_environment(guarded: Stack, tmp_path: Path) -> None:
    public = start_service("public_api.py", tmp_path, env={
        "LISTING_SERVICE_URL": guarded.listing.url, "USER_SERVICE_URL": guarded.user.url,
        "INTERNAL_TOKEN": TOKEN})
    try:
        assert http("GET", public.url + "/ready") == (200, {"result": True})
    finally:
        public.stop(signal.SIGKILL)
