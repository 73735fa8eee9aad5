"""A throwaway PostgreSQL server for tests and tools: initdb in a temp folder, start, stop.

    server = PostgresServer().start()
    url = server.create_database("listings_1")    # postgresql://postgres@127.0.0.1:PORT/...
    ...
    server.stop()                                  # and its folder is gone

The server binaries are Debian's (`apt-get install postgresql`, which `make test` runs when
they are absent), found by globbing /usr/lib/postgresql/*/bin. PostgreSQL refuses to run as
root, so the server runs as the `postgres` user, in a folder made under /tmp and handed to
it (pytest's temp folders are 0700 root). It listens on 127.0.0.1 and a socket in its folder,
trusts every local connection, and does not fsync: nothing it holds outlives the test run.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.processes import free_port

SUPERUSER = "postgres"


def server_bin() -> Path:
    """The newest installed server's bin folder (raises if PostgreSQL is not installed)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda path: int(Path(path).parts[-3]))
    if not found:
        raise FileNotFoundError("no PostgreSQL server under /usr/lib/postgresql/*/bin "
                                "(`apt-get install postgresql`; `make test` does it)")
    return Path(found[-1]).parent


class PostgresServer:
    def __init__(self) -> None:
        self.bin = server_bin()
        self.port = 0
        self.folder: Path | None = None

    @property
    def data(self) -> Path:
        assert self.folder is not None
        return self.folder / "data"

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _as_postgres(self, *argv: str | Path) -> None:
        command = [str(arg) for arg in argv]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        subprocess.run(command, check=True, capture_output=True)

    def start(self) -> PostgresServer:
        self.folder = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
        if os.geteuid() == 0:
            user = pwd.getpwnam(SUPERUSER)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self.port = free_port()
        self._as_postgres(self.bin / "initdb", "-D", self.data, "-A", "trust",
                          "-U", SUPERUSER, "-E", "UTF8", "--locale=C.UTF-8")
        settings = (f"-k {self.folder} -c listen_addresses=127.0.0.1 -p {self.port}"
                    " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                    " -c max_connections=200")
        self._as_postgres(self.bin / "pg_ctl", "-D", self.data, "-o", settings,
                          "-l", self.folder / "server.log", "-w", "start")
        return self

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement through psql as the superuser; its output, unaligned."""
        done = subprocess.run(
            [str(self.bin / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", database,
             "-c", statement], check=True, capture_output=True, text=True)
        return done.stdout

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.folder is None:
            return
        try:
            self._as_postgres(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
