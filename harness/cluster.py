"""Several processes of each service behind nginx: what `make cluster` runs, and the tests.

`start_cluster` starts N processes of each service on free ports, then nginx in front of
them (deploy/nginx.conf): one address per service, as under `make run`. The public API
processes call the services through nginx, so any of them reaches any process.
"""
from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path

from harness.nginx import Nginx, render, start_nginx
from harness.processes import Service, free_port, start_service


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
