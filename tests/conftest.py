"""Shared fixtures: the real apps, built by their own `make_app`, on loopback ports.

Every store test and service test runs on both backends: `backend` is parametrized over
"sqlite" and "postgresql", and listing_store and user_store (so listing_svc, user_svc and
public, built on them) open that backend. SQLite: a fresh file under pytest's `tmp_path`.
PostgreSQL: one throwaway server for the session (harness/postgres.py), one database per
service, emptied before each test (TRUNCATE ... RESTART IDENTITY: a few ms, where a CREATE
DATABASE per test and its DROP took ~45 ms). A test that is SQLite's alone (its query plans,
its file format) says so with `@pytest.mark.parametrize("backend", ["sqlite"])`. Nothing
touches the working tree. All three apps run in the test's one IOLoop (pytest-tornado's
`io_loop`), so a test can hold the listing, user and public API apps at once and talk to
them over real HTTP.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis.configuration import set_hypothesis_home_dir
from tornado.ioloop import IOLoop

import listing_service
import user_service
from common.downstream import configure_http_client
from harness.postgres import PostgresServer
from harness.processes import Trio, serve_folder, start_trio
from tests.support.apps import Served, make_public, serve_app, stop_app
from tests.support.fake import FakeService


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis caches under ./.hypothesis from collection on; tests write only to temp dirs.
    home = tempfile.mkdtemp(prefix="hypothesis-")
    set_hypothesis_home_dir(home)
    config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))


@pytest.fixture(autouse=True, scope="session")
def _http_client_configured() -> None:
    configure_http_client()


ROOT = Path(__file__).resolve().parents[1]
NOT_OURS = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache",
            ".ruff_cache"}


def _working_tree() -> dict[str, tuple[int, int]]:
    """Every file of the repository (tools' caches aside) with its size and mtime."""
    files = {}
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if d not in NOT_OURS]
        for name in names:
            stat = os.stat(os.path.join(folder, name))
            files[os.path.relpath(os.path.join(folder, name), ROOT)] = (stat.st_size,
                                                                        stat.st_mtime_ns)
    return files


@pytest.fixture(autouse=True, scope="session")
def _working_tree_untouched() -> Iterator[None]:
    """No test writes outside a temp folder: the repository is the same after the session."""
    before = _working_tree()
    yield
    after = _working_tree()
    changed = sorted(set(before.items()) ^ set(after.items()))
    assert not changed, f"tests wrote into the repository: {changed}"


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run, started by the first test that needs it."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def pg_database(postgres: PostgresServer) -> Iterator[Callable[[str], str]]:
    """Fresh databases, made on demand (`pg_database("listings")` -> a URL), dropped after."""
    made: list[str] = []

    def make(prefix: str) -> str:
        made.append(f"{prefix}_{uuid.uuid4().hex[:12]}")
        return postgres.create_database(made[-1])

    yield make
    for name in made:
        postgres.drop_database(name)


@pytest.fixture(scope="session")
def pg_urls(postgres: PostgresServer) -> dict[str, str]:
    """The databases the store fixtures share, one per service, emptied before each test."""
    return {service: postgres.create_database(service) for service in ("listings", "users")}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def _open_pg(store_class: Any, url: str, tables: str) -> Any:
    store = await store_class.open(url, pool_size=4)
    await store.fetch_all(f"TRUNCATE {tables} RESTART IDENTITY")
    return store


@pytest.fixture
def listing_store(io_loop: IOLoop, tmp_path: Any, backend: str,
                  request: pytest.FixtureRequest) -> Iterator[listing_service.Store]:
    store: listing_service.Store
    if backend == "postgresql":
        url = request.getfixturevalue("pg_urls")["listings"]
        store = io_loop.run_sync(lambda: _open_pg(listing_service.PgListingStore, url,
                                                  "listings, price_history"))
    else:
        store = io_loop.run_sync(
            lambda: listing_service.ListingStore.open(str(tmp_path / "l.db")))
    yield store
    io_loop.run_sync(store.close)


@pytest.fixture
def user_store(io_loop: IOLoop, tmp_path: Any, backend: str,
               request: pytest.FixtureRequest) -> Iterator[user_service.Store]:
    store: user_service.Store
    if backend == "postgresql":
        url = request.getfixturevalue("pg_urls")["users"]
        store = io_loop.run_sync(lambda: _open_pg(user_service.PgUserStore, url,
                                                  "users, login_failures"))
    else:
        store = io_loop.run_sync(lambda: user_service.UserStore.open(str(tmp_path / "u.db")))
    yield store
    io_loop.run_sync(store.close)


@pytest.fixture
def listing_svc(io_loop: IOLoop, listing_store: listing_service.Store) -> Iterator[Served]:
    served = serve_app(io_loop, listing_service.make_app(listing_store))
    yield served
    stop_app(io_loop, served)


@pytest.fixture
def user_svc(io_loop: IOLoop, user_store: user_service.Store) -> Iterator[Served]:
    served = serve_app(io_loop, user_service.make_app(user_store))
    yield served
    stop_app(io_loop, served)


@pytest.fixture
def public(io_loop: IOLoop, listing_svc: Served, user_svc: Served) -> Iterator[Served]:
    served = make_public(io_loop, listing_svc.url, user_svc.url)
    yield served
    stop_app(io_loop, served)


# The origins the CORS tests' public API allows (tests/test_web_clients.py).
CORS_ORIGINS = "http://127.0.0.1:18500,https://portal.example"


@pytest.fixture
def public_cors(io_loop: IOLoop, listing_svc: Served, user_svc: Served) -> Iterator[Served]:
    """The public API with --cors_origins set to CORS_ORIGINS."""
    served = make_public(io_loop, listing_svc.url, user_svc.url, cors=CORS_ORIGINS)
    yield served
    stop_app(io_loop, served)


@pytest.fixture
def public_any_origin(io_loop: IOLoop, listing_svc: Served, user_svc: Served) -> Iterator[Served]:
    """The public API with --cors_origins='*'."""
    served = make_public(io_loop, listing_svc.url, user_svc.url, cors="*")
    yield served
    stop_app(io_loop, served)


@pytest.fixture(scope="module")
def web_trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trio]:
    """`make run` as it is, the example web page included (the browser tests)."""
    trio = start_trio(tmp_path_factory.mktemp("web"))
    yield trio
    trio.stop()


@pytest.fixture(scope="module")
def other_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example web page again, served from an origin the public API does not allow."""
    process, url = serve_folder(ROOT / "examples" / "web", tmp_path_factory.mktemp("other"))
    yield url
    process.stop()


@pytest.fixture
def make_fake(io_loop: IOLoop) -> Iterator[Callable[..., FakeService]]:
    """Fake downstream services (tests/support/fake.py), stopped when the test ends."""
    fakes: list[FakeService] = []

    def make(**options: Any) -> FakeService:
        fakes.append(FakeService(**options).start(io_loop))
        return fakes[-1]

    yield make
    for fake in fakes:
        fake.stop()
