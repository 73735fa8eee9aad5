"""The three real processes, started exactly as `make run` starts them, end to end.

Ports are free ones and both databases live in the test's temp folder.
"""
from __future__ import annotations

import re
from pathlib import Path

from harness.processes import http, http_raw, start_trio

HONCHO_TERMINATED = 143  # honcho's own exit code when SIGTERM stops it (128 + 15)


def test_make_run_serves_a_user_and_a_listing_and_stops_cleanly(tmp_path: Path):
    trio = start_trio(tmp_path)
    try:
        status, created = http("POST", trio.public_url + "/public-api/users",
                               {"name": "Suresh Subramaniam"})
        assert status == 201, created
        user = created["user"]
        assert list(user) == ["id", "name", "created_at", "updated_at"]
        assert user["name"] == "Suresh Subramaniam"

        status, created = http("POST", trio.public_url + "/public-api/listings",
                               {"user_id": user["id"], "listing_type": "rent", "price": 6000})
        assert status == 201, created
        listing = created["listing"]
        assert (listing["user_id"], listing["listing_type"], listing["price"]) == (
            user["id"], "rent", 6000)

        status, page = http("GET", trio.public_url + "/public-api/listings")
        public_listing = {k: v for k, v in listing.items() if k != "user_id"}
        assert (status, page) == (200, {"result": True,
                                        "listings": [{**public_listing, "user": user}]})

        # The internal services hold the same data, each in its own file under tmp_path.
        assert http("GET", f"{trio.user_url}/users/{user['id']}") == (
            200, {"result": True, "user": user})
        assert http("GET", trio.listing_url + "/listings") == (
            200, {"result": True, "listings": [listing]})
        assert http("GET", trio.public_url + "/ready") == (200, {"result": True})
        assert {p.name for p in tmp_path.glob("*.db")} == {"listings.db", "users.db"}
        # The example web page, on its own port, which the public API's CORS allows.
        page = http_raw("GET", trio.web_url + "/")
        assert page.status == 200 and b'<script src="app.js">' in page.raw
        preflight = http_raw("OPTIONS", trio.public_url + "/public-api/listings", headers={
            "Origin": trio.web_url, "Access-Control-Request-Method": "POST"})
        assert preflight.status == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == trio.web_url
    finally:
        code = trio.stop()

    log = trio.output()
    assert code == HONCHO_TERMINATED, log
    for name in ("listing", "user", "public"):
        assert re.search(rf"{name}\.1 stopped \(rc=0\)", log), log
    assert log.count("common.server: stopped") == 3, log
    assert "Traceback" not in log, log


def test_the_procfile_entries_run_alone_as_a_supervisor_would_run_them(tmp_path: Path):
    # What `make bench` starts: each Procfile command in its own process, output to a file.
    trio = start_trio(tmp_path, honcho=False)
    try:
        commands = [p.popen.args for p in trio.processes]
        assert len(commands) == 4 and all(  # the three services and the example web page
            isinstance(args, list) and args[:2] == ["/bin/sh", "-c"] for args in commands), commands
        status, created = http("POST", trio.public_url + "/public-api/users", {"name": "Ann"})
        assert status == 201, created
        assert http("GET", f"{trio.user_url}/users/{created['user']['id']}") == (
            200, {"result": True, "user": created["user"]})
    finally:
        code = trio.stop()
    log = trio.output()
    assert code == 0, log  # each service's own exit code: no honcho in between
    assert log.count("common.server: stopped") == 3, log
    assert re.search(r"INFO\s+public \[\w+\] tornado\.access: POST /public-api/users 201 ",
                     log), log
