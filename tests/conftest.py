"""Shared fixtures: the real apps, built by their own `make_app`, on loopback ports.

Every service gets a fresh SQLite file under pytest's `tmp_path`; nothing touches the
working tree. All three apps run in the test's one IOLoop (pytest-tornado's `io_loop`), so a
test can hold the listing, user and public API apps at once and talk to them over real HTTP.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis.configuration import set_hypothesis_home_dir
from tornado.ioloop import IOLoop

import listing_service
import user_service
from common.downstream import configure_http_client
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


@pytest.fixture
def listing_store(io_loop: IOLoop, tmp_path: Any) -> Iterator[listing_service.ListingStore]:
    store = io_loop.run_sync(lambda: listing_service.ListingStore.open(str(tmp_path / "l.db")))
    yield store
    io_loop.run_sync(store.close)


@pytest.fixture
def user_store(io_loop: IOLoop, tmp_path: Any) -> Iterator[user_service.UserStore]:
    store = io_loop.run_sync(lambda: user_service.UserStore.open(str(tmp_path / "u.db")))
    yield store
    io_loop.run_sync(store.close)


@pytest.fixture
def listing_svc(io_loop: IOLoop, listing_store: listing_service.ListingStore) -> Iterator[Served]:
    served = serve_app(io_loop, listing_service.make_app(listing_store))
    yield served
    stop_app(io_loop, served)


@pytest.fixture
def user_svc(io_loop: IOLoop, user_store: user_service.UserStore) -> Iterator[Served]:
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
