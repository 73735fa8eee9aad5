"""nginx in front of several processes of each service: deploy/nginx.conf, rendered and run.

Used by `make cluster` (harness/cluster.py), the cluster tests and `make bench`. nginx comes
from Debian's packages (`make cluster` and `make test` install it when absent).
"""
from __future__ import annotations

import shutil
import signal
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.processes import ROOT, wait_until_up

TEMPLATE = ROOT / "deploy" / "nginx.conf"
ERRORS = ROOT / "deploy" / "json_errors.conf"


def nginx_binary() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).exists():
        raise FileNotFoundError("nginx is not installed (apt-get install nginx)")
    return found


def render(run_dir: Path, *, public_port: int, listing_port: int, user_port: int,
           upstreams: dict[str, list[int]], public_address: str = "127.0.0.1") -> Path:
    """Write the configuration for these ports into `run_dir`; its path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(ERRORS, run_dir / "json_errors.conf")

    def servers(ports: list[int]) -> str:
        # max_fails=1 fail_timeout=2s: a dead process is left alone for 2 s after one failure.
        return "\n        ".join(f"server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;"
                                 for port in ports)

    text = string.Template(TEMPLATE.read_text()).substitute(
        run_dir=run_dir, public_address=public_address, public_port=public_port,
        listing_port=listing_port, user_port=user_port,
        listing_servers=servers(upstreams["listing"]), user_servers=servers(upstreams["user"]),
        public_servers=servers(upstreams["public"]))
    path = run_dir / "nginx.conf"
    path.write_text(text)
    return path


@dataclass
class Nginx:
    """A running nginx; `stop()` ends it gracefully (SIGQUIT), then for good."""

    popen: subprocess.Popen[bytes]
    config: Path

    def stop(self, timeout: float = 10) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGQUIT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def error_log(self) -> str:
        path = self.config.parent / "nginx-error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_nginx(config: Path, check_url: str) -> Nginx:
    """Run nginx on `config` in the foreground of a child process; wait for `check_url`."""
    binary = nginx_binary()
    subprocess.run([binary, "-t", "-q", "-c", str(config), "-p", str(config.parent)],
                   check=True, capture_output=True)
    popen = subprocess.Popen([binary, "-c", str(config), "-p", str(config.parent)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    nginx = Nginx(popen, config)
    try:
        wait_until_up(check_url)
    except BaseException:
        nginx.stop()
        raise
    return nginx
