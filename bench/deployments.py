"""The set-ups `make bench` loads: the Procfile's trio on SQLite, the same three processes on
PostgreSQL, and `make cluster`'s two processes of each behind nginx on PostgreSQL.

Each is a context manager yielding a `Deployment`: where to send the load, which logs hold
the access lines, which processes' CPU counts, and how many listings are stored (so that a
POST run can tell acknowledged from stored). The PostgreSQL ones are seeded by copying the
seeded SQLite files with tools/copy_to_postgres, as an operator moving up would.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.seed import count_listings
from harness.cluster import start_cluster
from harness.postgres import PostgresServer
from harness.processes import start_stack, start_trio
from tools.copy_to_postgres import copy


@dataclass
class Deployment:
    public_url: str
    listing_url: str
    logs: list[Path]
    pids: list[int]
    listings: Callable[[], int]


@contextmanager
def sqlite_trio(folder: Path, honcho: bool = False) -> Iterator[Deployment]:
    """The Procfile's three processes (through honcho if `honcho`) on the files in `folder`."""
    trio = start_trio(folder, honcho=honcho)
    try:
        yield Deployment(trio.public_url, trio.listing_url, [trio.log_path],
                         [process.popen.pid for process in trio.processes],
                         lambda: count_listings(folder / "listings.db"))
    finally:
        trio.stop()


@contextmanager
def on_postgres(folder: Path, processes: int = 0) -> Iterator[Deployment]:
    """The seeded files of `folder` copied into PostgreSQL; one process of each service
    (`processes` = 0), or that many of each behind nginx."""
    server = PostgresServer().start()
    try:
        urls = {"listing": server.create_database("listings"),
                "user": server.create_database("users")}
        for service, file in (("listing", "listings.db"), ("user", "users.db")):
            asyncio.run(copy(service, f"sqlite:///{folder / file}", urls[service]))
        run = folder / f"postgres-{processes}"
        run.mkdir(exist_ok=True)

        def stored() -> int:
            return int(server.sql("SELECT count(*) FROM listings", "listings"))

        # The server's own CPU counts too: its postmaster, whose children serve the queries.
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])

        if processes:
            cluster = start_cluster(run, processes, database_urls=urls)
            try:
                assert cluster.nginx is not None
                yield Deployment(cluster.public_url, cluster.urls["listing"],
                                 [service.log_path for service in cluster.services],
                                 [postmaster, cluster.nginx.popen.pid,
                                  *(service.process.popen.pid for service in cluster.services
                                    if service.process)], stored)
            finally:
                cluster.stop()
        else:
            stack = start_stack(run, database_urls=(urls["listing"], urls["user"]))
            try:
                yield Deployment(stack.public.url, stack.listing.url,
                                 [service.log_path for service in stack.services],
                                 [postmaster, *(service.process.popen.pid
                                               for service in stack.services if service.process)],
                                 stored)
            finally:
                stack.stop()
    finally:
        server.stop()
