"""Driving load with wrk, and watching what the services spend while it runs.

- `run_wrk` runs wrk in its own process with `wrk.lua` and returns its JSON summary;
- `ProcessCpu` reads the CPU time of the services (and honcho, and wrk) from /proc;
- `AccessLog` counts the access-log lines each service wrote, from the services' combined log,
  which is how the bench knows how many requests the user service got per public request.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LUA = Path(__file__).with_name("wrk.lua")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Load:
    """One wrk run: where, how hard, and which kind of request (see wrk.lua)."""

    url: str
    seconds: float
    connections: int = 16
    mode: str = ""  # "", "user", "post", "login" or "patch"
    users: int = 1000
    body: str = ""  # login: the JSON body sent every time
    token: str = ""  # patch: the bearer token sent every time
    gzip: bool = False  # send Accept-Encoding: gzip (the answers come back compressed)


def run_wrk(load: Load) -> dict[str, Any]:
    """Run wrk (one thread: the services need the cores more) and return its summary."""
    env = {**os.environ, "BENCH_MODE": load.mode, "BENCH_USERS": str(load.users),
           "BENCH_BODY": load.body, "BENCH_TOKEN": load.token,
           "BENCH_GZIP": "1" if load.gzip else ""}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        ["wrk", "-t1", f"-c{load.connections}", f"-d{load.seconds:g}s", "--timeout", "5s",
         "-s", str(LUA), load.url],
        env=env, capture_output=True, text=True, timeout=load.seconds + 60, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_JSON ")]
    if not lines:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    summary = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    summary["wrk_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return summary


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _label(pid: int) -> str:
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    # public_api first: its command line names the listing and user services' URLs
    for name in ("public_api", "listing_service", "user_service", "honcho", "hello", "floor",
                 "nginx", "postgres"):
        if name in cmdline:
            return name.split("_")[0]
    return f"pid{pid}"


class ProcessCpu:
    """CPU seconds of a process and its descendants, by service name."""

    def __init__(self, *roots: int) -> None:
        self.roots = roots
        self.labels: dict[int, str] = {}

    def sample(self) -> dict[str, float]:
        # The tree is read again at every sample: a server forks workers under load
        # (PostgreSQL a backend per pooled connection), and those count from their start.
        queue = list(self.roots)
        while queue:
            pid = queue.pop()
            if pid not in self.labels:
                with contextlib.suppress(OSError):
                    self.labels[pid] = _label(pid)
            queue.extend(_children(pid))
        totals: dict[str, float] = {}
        for pid, label in self.labels.items():
            with contextlib.suppress(OSError):  # a process that has just exited
                totals[label] = totals.get(label, 0.0) + _cpu_seconds(pid)
        return totals


# The text format's "<level> <service> [<request id>] tornado.access:" (behind honcho's prefix
# when honcho relays it).
_ACCESS = re.compile(r" (?:INFO|WARNING|ERROR)\s+(\w+) \[[^\]]*\] tornado\.access: ")


class AccessLog:
    """Counts access-log lines per service in some logs, from a remembered position on."""

    def __init__(self, *paths: Path) -> None:
        self.offsets = dict.fromkeys(paths, 0)

    def mark(self) -> None:
        self.offsets = {path: path.stat().st_size for path in self.offsets}

    def count_since_mark(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for path, offset in self.offsets.items():
            with open(path, "rb") as log:
                log.seek(offset)
                for raw in log:
                    match = _ACCESS.search(raw.decode("utf-8", "replace"))
                    if match:
                        counts[match.group(1)] = counts.get(match.group(1), 0) + 1
        return counts
