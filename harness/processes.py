"""The services as real OS processes, for end-to-end and fault tests.

`start_service` runs one service script the way the Procfile does; `start_trio` runs all
three through honcho and the Procfile itself, exactly as `make run` does, on free ports with
databases in a temp folder. Blocking waits are fine here: tests, not services, call them.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPResponse
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode, urlsplit

from honcho.environ import parse_procfile

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Answer:
    """One raw HTTP answer: status, headers (a Message), body bytes."""

    status: int
    headers: Any
    raw: bytes

    def json(self) -> Any:
        """The body as JSON, after checking it is declared as JSON."""
        assert self.headers.get("Content-Type") == "application/json; charset=UTF-8", self.raw
        return json.loads(self.raw)


def http_raw(method: str, url: str, data: bytes | None = None, *,
             headers: dict[str, str] | None = None, timeout: float = 10) -> Answer:
    """A blocking request with the body sent as given, answering status, headers and bytes."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Answer(error.code, error.headers, error.read())


def http(method: str, url: str, body: Any = None, *, form: bool = False,
         headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, Any]:
    """A blocking request answering (status, parsed JSON body or None)."""
    data = None
    headers = dict(headers or {})
    if body is not None:
        if form:
            data = urlencode(body).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        else:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
    answer = http_raw(method, url, data, headers=headers, timeout=timeout)
    return answer.status, json.loads(answer.raw) if answer.raw else None


PASSWORD = "correct horse battery"


def sign_up(public_url: str, name: str, password: str | None = PASSWORD) -> dict:
    """A user made through the public API at `public_url` (with a password, unless None)."""
    fields = {"name": name} if password is None else {"name": name, "password": password}
    status, body = http("POST", public_url + "/public-api/users", fields)
    assert status == 201, body
    return body["user"]


def token_for(public_url: str, user_id: int, password: str = PASSWORD) -> str:
    """A bearer token of the user, from the public API at `public_url`."""
    status, body = http("POST", public_url + "/public-api/tokens",
                        {"user_id": user_id, "password": password})
    assert status == 201, body
    return body["token"]


class HeldRequest:
    """A request written by hand on its own socket, so a test can hold it open part-way:
    headers now, the body later or never (slow clients, in-flight requests at shutdown)."""

    def __init__(self, url: str, method: str, path: str, headers: dict[str, str],
                 timeout: float = 10) -> None:
        host, port = urlsplit(url).hostname, urlsplit(url).port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
                 *(f"{name}: {value}" for name, value in headers.items())]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_interim(self) -> bytes:
        """Read one interim answer (`100 Continue` comes once the handler holds the request)."""
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            byte = self.sock.recv(1)
            if not byte:
                raise ConnectionError(f"closed after {head!r}")
            head += byte
        return head

    def read_answer(self) -> Answer:
        """The final answer, then the socket is closed."""
        response = HTTPResponse(self.sock)
        try:
            response.begin()
            return Answer(response.status, response.msg, response.read())
        finally:
            response.close()
            self.close()

    def closed_by_server(self) -> bool:
        """True once the server has closed the connection (the read sees end of stream)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        finally:
            self.close()

    def close(self) -> None:
        self.sock.close()


def wait_until_up(url: str, timeout: float = 15, process: Process | None = None) -> None:
    """Until the service at `url` answers its /ping (see wait_until_served)."""
    wait_until_served(url + "/ping", timeout, process)


@dataclass
class Process:
    """A running service (or honcho); its output goes to `log_path`."""

    popen: subprocess.Popen
    log_path: Path
    _log: IO[bytes]

    def send(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send `sig` and wait for the exit code (killing it if it overstays `timeout`)."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            self.popen.send_signal(signal.SIGCONT)  # a frozen process must wake to act on it
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
                raise
        self._log.close()
        return self.popen.returncode

    def output(self) -> str:
        if not self._log.closed:  # stop() closes it; the output stays readable after
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


def _spawn(argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> Process:
    log = open(log_path, "ab")  # noqa: SIM115 (Process.stop closes it)
    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1", **(env or {})}
    popen = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                             env=full_env, start_new_session=True)
    return Process(popen, log_path, log)


@dataclass
class Service:
    """One service process on its own port, restartable with the same arguments."""

    script: str
    port: int
    args: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Service:
        """Spawn it and wait until it answers; if it never does, kill it and close its log
        before raising (the error carries the end of the log)."""
        argv = [sys.executable, str(ROOT / self.script), f"--port={self.port}", *self.args]
        self.process = _spawn(argv, self.log_path, self.env)
        try:
            wait_until_up(self.url, process=self.process)
        except BaseException:
            self.process.stop(signal.SIGKILL)
            raise
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.process is not None
        return self.process.stop(sig, timeout)

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections, but nothing answers (a hung service)."""
        assert self.process is not None
        self.process.send(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send(signal.SIGCONT)

    def output(self) -> str:
        """Everything this service has logged, across restarts."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_service(script: str, tmp: Path, *args: str, env: dict[str, str] | None = None,
                  port: int | None = None) -> Service:
    """Start `script` (e.g. "user_service.py") on a free port; its log lands in `tmp`."""
    port = port or free_port()
    log_path = tmp / f"{Path(script).stem}-{port}.log"
    return Service(script, port, list(args), log_path, env).start()


@dataclass
class Stack:
    """The three services as separate processes, so a test can stop or freeze any one."""

    listing: Service
    user: Service
    public: Service

    @property
    def services(self) -> tuple[Service, Service, Service]:
        return self.listing, self.user, self.public

    def output(self) -> str:
        return "".join(service.output() for service in self.services)

    def stop(self) -> None:
        """Kill whatever still runs (frozen ones too) and close the logs; safe to call twice."""
        for service in self.services:
            if service.process is not None:
                service.stop(signal.SIGKILL)


def start_stack(tmp: Path, *args: str, public_args: tuple[str, ...] = (),
                env: dict[str, str] | None = None,
                database_urls: tuple[str, str] | None = None) -> Stack:
    """Listing, user and public API on free ports; `args` go to all three, `public_args` to
    the public API only. Databases live under `tmp`, or at `database_urls` (listing, user)."""
    started: list[Service] = []
    try:
        for n, (script, db) in enumerate((("listing_service.py", "listings.db"),
                                          ("user_service.py", "users.db"))):
            database = (f"--database_url={database_urls[n]}" if database_urls
                        else f"--db_path={tmp / db}")
            started.append(start_service(script, tmp, database, *args, env=env))
        listing, user = started
        started.append(start_service(
            "public_api.py", tmp, f"--listing_service_url={listing.url}",
            f"--user_service_url={user.url}", *args, *public_args, env=env))
    except BaseException:
        for service in started:
            service.stop(signal.SIGKILL)
        raise
    return Stack(*started)


@dataclass
class Trio:
    """The three services started from the Procfile: by honcho, or one process per entry."""

    processes: list[Process]  # honcho alone, or the three services and the web page
    log_path: Path  # all their output, in one file
    listing_url: str
    user_url: str
    public_url: str
    web_url: str  # the example web page (examples/web), the Procfile's `web` entry

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM to each process; the worst exit code (honcho's own when it ran them)."""
        return max(process.stop(signal.SIGTERM, timeout) for process in self.processes)


def wait_until_served(url: str, timeout: float = 15, process: Process | None = None) -> None:
    """Until `url` answers 200 (a service's /ping, or a static file server's page). Given the
    `process` that should answer, stop waiting as soon as it exits; either failure quotes
    the end of its log, so that a red build says why."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if http_raw("GET", url, timeout=1).status == 200:
                return
        except OSError:
            pass
        if process is not None and process.popen.poll() is not None:
            raise RuntimeError(f"{url}: its process exited ({process.popen.returncode}) "
                               f"before answering; its log ends:\n{process.log_tail()}")
        if time.monotonic() > deadline:
            tail = f"; its log ends:\n{process.log_tail()}" if process else ""
            raise TimeoutError(f"{url} did not come up within {timeout}s{tail}")
        time.sleep(0.05)


def start_trio(tmp: Path, *, honcho: bool = True,
               env: dict[str, str] | None = None) -> Trio:
    """`make run`'s own command line, on free ports, with databases under `tmp`; `env`
    adds to the environment the Procfile reads (CORS_ORIGINS, say).

    With `honcho=False`, each Procfile entry runs as its own process, as a supervisor
    (systemd, a container runtime) would run it: the same command, options and environment,
    but the output goes straight to a file instead of through honcho, which relays every
    line in Python (the bench measures what that costs per request).
    """
    ports = {name: free_port()
             for name in ("LISTING_PORT", "USER_PORT", "PUBLIC_PORT", "WEB_PORT")}
    given = env or {}
    env = {**{k: str(v) for k, v in ports.items()},
           "LISTING_DB": str(tmp / "listings.db"), "USER_DB": str(tmp / "users.db")}
    for inherited in ("LISTING_SERVICE_URL", "USER_SERVICE_URL"):
        env[inherited] = ""  # the Procfile's own defaults must decide, not the caller's shell
    env = {**env, **given}
    procfile = ROOT / "Procfile"
    if honcho:
        processes = [_spawn([str(BIN / "honcho"), "start", "-f", str(procfile)],
                            tmp / "honcho.log", env)]
    else:
        entries = parse_procfile(procfile.read_text()).processes
        # Each entry through `sh -c`, as honcho runs it: the shell expands the ${...} defaults.
        processes = [_spawn(["/bin/sh", "-c", command], tmp / "services.log", env)
                     for command in entries.values()]
    trio = Trio(processes, processes[0].log_path, *(f"http://127.0.0.1:{ports[k]}"
                for k in ("LISTING_PORT", "USER_PORT", "PUBLIC_PORT", "WEB_PORT")))
    supervisor = processes[0] if honcho else None  # honcho exits when any entry does
    try:
        for url in (trio.listing_url, trio.user_url, trio.public_url):
            wait_until_up(url, process=supervisor)
        wait_until_served(trio.web_url + "/", process=supervisor)
    except BaseException:
        trio.stop()
        raise
    return trio


def serve_folder(folder: Path, tmp: Path) -> tuple[Process, str]:
    """A static file server for `folder` on a free loopback port, as the Procfile's `web`
    entry runs it (another port is another origin: the browser tests' origin not allowed)."""
    port = free_port()
    process = _spawn([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port),
                      "--directory", str(folder)], tmp / f"static-{port}.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_served(url + "/", process=process)
    except BaseException:
        process.stop(signal.SIGKILL)
        raise
    return process, url
