"""Several processes of each service behind nginx: what `make cluster` runs, and the tests.

    python -m harness.cluster       # `make cluster`: PostgreSQL, nginx, N of each, under honcho


`start_cluster` starts N processes of each service on free ports, then nginx in front of
them (deploy/nginx.conf): one address per service, as under `make run`. The public API
processes call the services through nginx, so any of them reaches any process.
"""
from __future__ import annotations

import os
import pwd
import secrets
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.nginx import Nginx, nginx_binary, render, start_nginx
from harness.postgres import server_bin
from harness.processes import ROOT, Service, free_port, start_service


@dataclass
class Cluster:
    """The processes of each service, and nginx's address for each service."""

    listing: list[Service]
    user: list[Service]
    public: list[Service]
    urls: dict[str, str] = field(default_factory=dict)  # service -> nginx's address for it
    nginx: Nginx | None = None

    @property
    def services(self) -> list[Service]:
        return [*self.listing, *self.user, *self.public]

    @property
    def public_url(self) -> str:
        return self.urls["public"]

    def output(self) -> str:
        return "".join(service.output() for service in self.services)

    def stop(self) -> None:
        """nginx first (no new requests), then every process; safe to call twice."""
        if self.nginx is not None:
            self.nginx.stop()
        for service in self.services:
            if service.process is not None:
                service.stop(signal.SIGKILL)


def start_cluster(tmp: Path, processes: int = 2, *, database_urls: dict[str, str] | None = None,
                  args: tuple[str, ...] = ()) -> Cluster:
    """`processes` of each service behind nginx. `database_urls` (per data service) default to
    one SQLite file each under `tmp`, which N processes share (fine for reads and tests;
    PostgreSQL is the backend for writes at scale). `args` go to every process."""
    urls = database_urls or {"listing": f"sqlite:///{tmp / 'listings.db'}",
                             "user": f"sqlite:///{tmp / 'users.db'}"}
    ports = {name: free_port() for name in ("public", "listing", "user")}
    cluster = Cluster([], [], [], {name: f"http://127.0.0.1:{port}"
                                   for name, port in ports.items()})
    try:
        for name, script in (("listing", "listing_service.py"), ("user", "user_service.py")):
            for _ in range(processes):
                getattr(cluster, name).append(start_service(
                    script, tmp, f"--database_url={urls[name]}", *args))
        for _ in range(processes):
            cluster.public.append(start_service(
                "public_api.py", tmp, f"--listing_service_url={cluster.urls['listing']}",
                f"--user_service_url={cluster.urls['user']}", *args))
        config = render(tmp / "nginx", public_port=ports["public"],
                        listing_port=ports["listing"], user_port=ports["user"],
                        upstreams={name: [service.port for service in getattr(cluster, name)]
                                   for name in ("listing", "user", "public")})
        cluster.nginx = start_nginx(config, cluster.public_url)
    except BaseException:
        cluster.stop()
        raise
    return cluster


# --- `make cluster` ---------------------------------------------------------------------------

STATE = ROOT / ".cluster"  # kept between runs: PostgreSQL's data, the rendered configuration


def _environment_number(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value else default


def _as_postgres(*argv: str | Path) -> list[str]:
    command = [str(arg) for arg in argv]
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def prepare_postgres(folder: Path, port: int) -> tuple[list[str], dict[str, str]]:
    """A persistent server in `folder` (made on first use) holding the two databases; the
    command that runs it in the foreground, and each service's database URL."""
    binaries = server_bin()
    data = folder / "data"
    if not data.exists():
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            owner = pwd.getpwnam("postgres")
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        subprocess.run(_as_postgres(binaries / "initdb", "-D", data, "-A", "trust",
                                    "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"),
                       check=True, capture_output=True)
    settings = ["-k", str(folder), "-c", "listen_addresses=127.0.0.1", "-p", str(port)]
    server = _as_postgres(binaries / "postgres", "-D", data, *settings)
    # Started once here to create the databases that are missing, then stopped: under the
    # process runner it runs in the foreground like everything else.
    subprocess.run(_as_postgres(binaries / "pg_ctl", "-D", data, "-o", " ".join(settings),
                                "-l", folder / "prepare.log", "-w", "start"),
                   check=True, capture_output=True)
    try:
        for database in ("listings", "users"):
            psql = [str(binaries / "psql"), "-X", "-At", "-h", "127.0.0.1", "-p", str(port),
                    "-U", "postgres"]
            exists = subprocess.run([*psql, "-c", "SELECT 1 FROM pg_database WHERE datname ="
                                     f" '{database}'"], check=True, capture_output=True,
                                    text=True).stdout.strip()
            if not exists:
                subprocess.run([*psql, "-c", f"CREATE DATABASE {database}"], check=True,
                               capture_output=True)
    finally:
        subprocess.run(_as_postgres(binaries / "pg_ctl", "-D", data, "-m", "fast", "stop"),
                       check=True, capture_output=True)
    urls = {"listing": f"postgresql://postgres@127.0.0.1:{port}/listings",
            "user": f"postgresql://postgres@127.0.0.1:{port}/users"}
    return server, urls


def auth_secret(folder: Path) -> str:
    """$AUTH_SECRET, else one made once and kept in `folder`: every public API process must
    sign and check tokens with the same secret."""
    if os.environ.get("AUTH_SECRET"):
        return os.environ["AUTH_SECRET"]
    path = folder / "auth_secret"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def cluster_procfile(processes: int, public_port: int, listing_port: int, user_port: int,
                     postgres_port: int) -> str:
    """Everything `make cluster` runs, as one Procfile for honcho; prepares what it needs."""
    server, urls = prepare_postgres(STATE / "postgres", postgres_port)
    ports = {name: [base + n for n in range(1, processes + 1)]
             for name, base in (("listing", listing_port), ("user", user_port),
                                ("public", public_port))}
    config = render(STATE / "nginx", public_port=public_port, listing_port=listing_port,
                    user_port=user_port, upstreams=ports, public_address="0.0.0.0")
    ready = (f"until {server_bin() / 'pg_isready'} -q -U postgres -h 127.0.0.1 -p {postgres_port};"
             " do sleep 0.2; done; exec")
    nginx = [nginx_binary(), "-c", str(config), "-p", str(config.parent)]
    lines = [f"postgres: exec {shlex.join(server)}", f"nginx: exec {shlex.join(nginx)}"]
    for name, script in (("listing", "listing_service.py"), ("user", "user_service.py")):
        for n, port in enumerate(ports[name], 1):
            lines.append(f"{name}{n}: {ready} python {script} --port={port}"
                         f" --database_url={urls[name]}")
    # The origins `make run` allows (its example page), unless $CORS_ORIGINS says otherwise.
    web = _environment_number("WEB_PORT", 8500)
    origins = os.environ.get("CORS_ORIGINS", f"http://127.0.0.1:{web},http://localhost:{web}")
    for n, port in enumerate(ports["public"], 1):
        lines.append(f"public{n}: exec python public_api.py --port={port} --address=127.0.0.1"
                     f" --listing_service_url=http://127.0.0.1:{listing_port}"
                     f" --user_service_url=http://127.0.0.1:{user_port}"
                     f" --cors_origins={shlex.quote(origins)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    """`make cluster`: PostgreSQL, nginx and N processes of each service, under honcho."""
    processes = _environment_number("CLUSTER_PROCESSES", 2)
    procfile = STATE / "Procfile"
    procfile.parent.mkdir(parents=True, exist_ok=True)
    procfile.write_text(cluster_procfile(
        processes, _environment_number("PUBLIC_PORT", 8000),
        _environment_number("LISTING_PORT", 6000), _environment_number("USER_PORT", 7000),
        _environment_number("POSTGRES_PORT", 5433)))
    env = {**os.environ, "AUTH_SECRET": auth_secret(STATE),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    print(f"make cluster: {processes} process(es) of each service behind nginx;"  # noqa: T201
          f" PostgreSQL's data in {STATE / 'postgres'}; Ctrl-C stops everything", flush=True)
    os.execvpe("honcho", ["honcho", "start", "-f", str(procfile), "-d", str(ROOT)], env)


if __name__ == "__main__":
    main()
