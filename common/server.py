"""Command-line options and the life of a server process: listen, serve, shut down gracefully.

Options live in a fresh `OptionParser` per process, never in tornado's global one, so the
three service modules can be imported into one test process without their options clashing.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Coroutine, Sequence
from typing import Any

import uvloop
from tornado.httpserver import HTTPServer
from tornado.options import OptionParser
from tornado.web import Application

from common.logs import configure_logging
from common.web import DEFAULT_MAX_BODY_SIZE

log = logging.getLogger(__name__)

# Connections the kernel holds for us before we accept them. Tornado's default, 128, is less
# than one public API's bursts (common.downstream.MAX_PER_SERVICE per process); beyond it
# SYNs are dropped and resent a second later. Linux caps it at net.core.somaxconn (4096).
LISTEN_BACKLOG = 1024


def service_options(port: int, address: str) -> OptionParser:
    """The options every service takes; each service defines its own on top."""
    options = OptionParser()
    options.define("port", default=port, type=int, help="port to listen on")
    options.define("address", default=address, help="address to bind ('' for all interfaces)")
    options.define("debug", default=False, type=bool, help="autoreload on code changes")
    options.define("max_body_size", default=DEFAULT_MAX_BODY_SIZE, type=int,
                   help="largest request body accepted, in bytes (413 above)")
    options.define("shutdown_grace", default=10.0, type=float,
                   help="seconds requests in flight get to finish on SIGTERM/SIGINT")
    options.define("idle_connection_timeout", default=60.0, type=float,
                   help="seconds an idle keep-alive connection is kept open")
    options.define("body_timeout", default=30.0, type=float,
                   help="seconds a client gets to send a request body")
    options.define("log_format", default="text", help="'text' for people, 'json' for machines")
    options.define("log_batch_delay", default=0.05, type=float,
                   help="seconds a log line may wait to be written with others (0: at once)")
    return options


def data_service_options(port: int, db_path: str) -> OptionParser:
    """The options of the two data services: those of every service, a database, a token."""
    options = service_options(port=port, address="127.0.0.1")
    options.define("db_path", default=db_path,
                   help="path of the SQLite file (when --database_url is not given)")
    options.define("database_url", default="",
                   help="sqlite:///<path> (sqlite:////abs/path) or"
                        " postgresql://user@host:port/dbname (default: sqlite:///<db_path>)")
    options.define("db_pool_size", default=10, type=int,
                   help="PostgreSQL only: most connections the service opens (asyncpg pool)")
    options.define("internal_token", default="",
                   help="token every request but /ping and /ready must carry in"
                        " X-Internal-Token (default: $INTERNAL_TOKEN; empty: none)")
    return options


def database_url(options: OptionParser) -> str:
    """The database a data service opens: --database_url, else its --db_path's file."""
    return options.database_url or f"sqlite:///{options.db_path}"


# Options whose default comes from the environment: read here and nowhere else, after
# parsing, so that --help never prints a secret. Option -> (variable, default without it).
ENVIRONMENT = {
    "internal_token": ("INTERNAL_TOKEN", ""),
    "downstream_token": ("INTERNAL_TOKEN", ""),
    "listing_service_url": ("LISTING_SERVICE_URL", "http://127.0.0.1:6000"),
    "user_service_url": ("USER_SERVICE_URL", "http://127.0.0.1:7000"),
    "auth_secret": ("AUTH_SECRET", ""),  # the public API's token secret (random if empty)
}


def parse(options: OptionParser, argv: Sequence[str] | None, service: str) -> OptionParser:
    """Parse the command line (fail fast on a bad value) and set up logging."""
    options.parse_command_line(list(argv) if argv is not None else None, final=True)
    for name, (variable, default) in ENVIRONMENT.items():
        if name in options and not options[name]:
            options[name] = os.environ.get(variable) or default
    configure_logging(service, options.log_format, batch_delay=options.log_batch_delay)
    return options


def app_settings(options: OptionParser) -> dict[str, Any]:
    """The options that shape an Application, as `json_application` keywords."""
    return {"debug": options.debug, "max_body_size": options.max_body_size,
            "idle_connection_timeout": options.idle_connection_timeout,
            "internal_token": options.internal_token if "internal_token" in options else ""}


async def serve(app: Application, options: OptionParser) -> None:
    """Serve `app` until SIGTERM or SIGINT, then stop accepting and drain in-flight requests."""
    server = HTTPServer(
        app,
        max_body_size=max(options.max_body_size * 4, 16 * 1024 * 1024),  # our 413 answers first
        idle_connection_timeout=options.idle_connection_timeout,
        body_timeout=options.body_timeout,
    )
    server.listen(options.port, options.address, backlog=LISTEN_BACKLOG)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    log.info("listening on %s:%d", options.address or "*", options.port)
    try:
        await stopping.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("shutting down: no new connections, %d request(s) in flight",
             app.settings["inflight"].count)
    server.stop()
    await drain(app, options.shutdown_grace)
    await server.close_all_connections()
    log.info("stopped")


async def drain(app: Application, grace: float) -> None:
    """Wait until no request is in flight, or `grace` seconds have passed."""
    try:
        await asyncio.wait_for(app.settings["inflight"].idle(), grace)
    except TimeoutError:
        log.warning("grace period over: %d request(s) cut off", app.settings["inflight"].count)


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a service's `main()` on uvloop: the bench measured ~5% less CPU per request."""
    uvloop.run(main)
