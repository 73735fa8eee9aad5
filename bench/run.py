"""`make bench`: seed, start the services from the Procfile, load them with wrk, report.

    .venv/bin/python -m bench.run [--seconds 10] [--only public_p10,public_post] [--scale 1000000]

Every figure is also written as JSON to bench/results/. Throughput is compared with a
hello-world Tornado handler measured in the same run, so runs on different (or busy)
machines stay comparable as ratios.

The services run the Procfile's own commands, one process each, logging to a file, as a
supervisor would run them in production. `make run` puts honcho in front, which relays every
log line to the terminal in Python; the last scenario runs the page again under honcho, so
the table shows what that relay costs.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.deployments import Deployment, on_postgres, sqlite_trio
from bench.load import AccessLog, Load, ProcessCpu, run_wrk
from bench.seed import seed
from harness.processes import ROOT, Service, http, start_service

RESULTS = Path(__file__).with_name("results")
TARGETS = {"public_p10": 0.25, "public_post": 0.12}  # share of the hello-world ceiling
P99_TARGET_MS = 30.0
SCALE_TARGET = 1.3


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    target: str  # "hello", "floor", "public" or "listing": which process the URL points at
    path: str
    mode: str = ""
    honcho: bool = False  # the services started by honcho, as `make run` does
    # "sqlite": the Procfile's processes; "postgresql": the same three on PostgreSQL;
    # "cluster": two of each behind nginx on PostgreSQL, as `make cluster` runs them.
    setup: str = "sqlite"
    gzip: bool = False  # with Accept-Encoding: gzip


SCENARIOS = [
    Scenario("hello", "hello-world JSON handler (ceiling)", "hello", "/"),
    Scenario("public_p10", "GET /public-api/listings?page_size=10", "public",
             "/public-api/listings?page_size=10"),
    Scenario("floor", "the same page, nothing behind it (floor)", "floor",
             "/public-api/listings?page_size=10"),
    Scenario("public_p10_gzip", "the page size 10, Accept-Encoding: gzip", "public",
             "/public-api/listings?page_size=10", gzip=True),
    Scenario("public_p50", "GET /public-api/listings?page_size=50", "public",
             "/public-api/listings?page_size=50"),
    Scenario("public_p50_gzip", "the page size 50, Accept-Encoding: gzip", "public",
             "/public-api/listings?page_size=50", gzip=True),
    Scenario("public_user", "GET /public-api/listings?user_id=<random>", "public",
             "/public-api/listings?page_size=10", "user"),
    Scenario("listing_direct", "GET /listings (listing service)", "listing", "/listings"),
    Scenario("public_post", "POST /public-api/listings", "public", "/public-api/listings",
             "post"),
    Scenario("login", "POST /public-api/tokens (argon2id login)", "public",
             "/public-api/tokens", "login"),
    # Also the price-history path: each PATCH changes the price, so its trigger writes a point.
    Scenario("patch_auth", "PATCH /public-api/listings/<own> with a token", "public",
             "/public-api/listings/{listing}", "patch"),
    Scenario("hello_again", "hello-world again (drift check)", "hello", "/"),
    Scenario("public_p10_honcho", "the page size 10 again, under honcho", "public",
             "/public-api/listings?page_size=10", honcho=True),
    Scenario("pg_p10", "the page size 10, on PostgreSQL", "public",
             "/public-api/listings?page_size=10", setup="postgresql"),
    Scenario("pg_post", "POST /public-api/listings, on PostgreSQL", "public",
             "/public-api/listings", "post", setup="postgresql"),
    Scenario("cluster_p10", "the page size 10, 2 of each behind nginx", "public",
             "/public-api/listings?page_size=10", setup="cluster"),
    Scenario("cluster_post", "POST /public-api/listings, 2 of each, nginx", "public",
             "/public-api/listings", "post", setup="cluster"),
]
SCALE_PAGES = (1, 500)


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "load_average_at_start": os.getloadavg()}


class Bench:
    def __init__(self, args: argparse.Namespace, deployment: Deployment,
                 references: dict[str, str], cpu: ProcessCpu) -> None:
        """`references`: the URLs of the hello-world ceiling and the floor page."""
        self.args, self.deployment, self.cpu = args, deployment, cpu
        self.urls = {**references, "public": deployment.public_url,
                     "listing": deployment.listing_url}
        self.log = AccessLog(*deployment.logs)
        self.account: dict[str, str] = {}

    def load(self, scenario: Scenario, seconds: float) -> Load:
        if scenario.mode in ("login", "patch") and not self.account:
            self.account = self.sign_up()
        path = scenario.path.replace("{listing}", self.account.get("listing", ""))
        return Load(self.urls[scenario.target] + path, seconds, self.args.connections,
                    scenario.mode, self.args.users, self.account.get("login", ""),
                    self.account.get("token", ""), scenario.gzip)

    def sign_up(self) -> dict[str, str]:
        """A user with a password, a listing of theirs and a token, for login and patch."""
        url = self.deployment.public_url + "/public-api"
        password = "bench password"
        user = http("POST", url + "/users", {"name": "Bench", "password": password})[1]["user"]
        listing = http("POST", url + "/listings",
                       {"user_id": user["id"], "listing_type": "rent", "price": 1000})[1]
        login = {"user_id": user["id"], "password": password}
        token = http("POST", url + "/tokens", login)[1]["token"]
        return {"login": json.dumps(login), "token": token,
                "listing": str(listing["listing"]["id"])}

    def run(self, scenario: Scenario) -> dict[str, Any]:
        print(f"  {scenario.name:<15} warm-up {self.args.warmup:g}s, "
              f"measure {self.args.seconds:g}s ...", flush=True)
        run_wrk(self.load(scenario, self.args.warmup))
        time.sleep(0.3)
        listings_before = self.deployment.listings()
        self.log.mark()
        cpu_before = self.cpu.sample()
        result = run_wrk(self.load(scenario, self.args.seconds))
        cpu_after = self.cpu.sample()
        time.sleep(0.5)  # the last requests' access lines and inserts land
        result.update(scenario=scenario.name, what=scenario.what,
                      rps=result["requests"] / (result["duration_us"] / 1e6),
                      errors=result["non_2xx"] + result["socket_errors"] + result["timeouts"],
                      bytes_per_request=round(result["bytes"] / max(result["requests"], 1)))
        requests = max(result["requests"], 1)
        result["cpu_ms_per_request"] = {
            label: round(1000 * (cpu_after[label] - cpu_before.get(label, 0.0)) / requests, 3)
            for label in cpu_after if cpu_after[label] - cpu_before.get(label, 0.0) > 0.005}
        result["cpu_ms_per_request"]["wrk"] = round(1000 * result["wrk_cpu_s"] / requests, 3)
        if scenario.target == "public":
            seen = self.log.count_since_mark()
            public = max(seen.get("public", 0), 1)
            result["user_calls_per_request"] = round(seen.get("user", 0) / public, 3)
            result["listing_calls_per_request"] = round(seen.get("listing", 0) / public, 3)
        if scenario.mode == "post":
            created = self.deployment.listings() - listings_before
            result["created"] = created
            result["lost"] = max(0, result["ok"] - created)  # acknowledged but not stored
        return result

    def latency(self, label: str) -> dict[str, Any]:
        """Page latency at concurrency 1: cost of one request, not of queueing."""
        figures = {}
        for page in SCALE_PAGES:
            url = f"{self.deployment.public_url}/public-api/listings?page_num={page}&page_size=10"
            run_wrk(Load(url, 1, 1))
            summary = run_wrk(Load(url, self.args.scale_seconds, 1))
            figures[f"page_{page}"] = {"p50_ms": summary["p50_us"] / 1000,
                                       "p99_ms": summary["p99_us"] / 1000,
                                       "requests": summary["requests"],
                                       "errors": summary["non_2xx"] + summary["socket_errors"]}
        print(f"  latency with {label}: " + ", ".join(
            f"page {p}: p50 {figures[f'page_{p}']['p50_ms']:.2f} ms" for p in SCALE_PAGES))
        return figures


def start_floor(folder: Path) -> list[Service]:
    """bench/floor.py's three processes: two data processes, then the public one in front."""
    env = {"PYTHONPATH": str(ROOT)}  # it imports the project's downstream client
    started: list[Service] = []
    try:
        for _ in range(2):
            started.append(start_service("bench/floor.py", folder, "--role=data", env=env))
        started.append(start_service("bench/floor.py", folder, "--role=public",
                                     f"--listing_url={started[0].url}",
                                     f"--user_url={started[1].url}", env=env))
    except BaseException:
        for service in started:
            service.stop()
        raise
    return started


def seeded(folder: Path, args: argparse.Namespace, listings: int) -> Path:
    print(f"seeding {args.users:,} users and {listings:,} listings into {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    seed(folder, args.users, listings)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured run per scenario")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up per scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--scale", type=int, default=1_000_000,
                        help="listings for the scale run (0 skips it)")
    parser.add_argument("--scale_seconds", type=float, default=4.0)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--tag", default="", help="label for this run in the results file name")
    args = parser.parse_args()
    # The ceiling and the floor are measured in every run: the ratios are to them.
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only.split(",")
              or s.target in ("hello", "floor")]
    report: dict[str, Any] = {"machine": machine(), "settings": vars(args), "scenarios": [],
                              "scale": {}, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                    time.gmtime())}
    print(f"machine: {report['machine']['cpus']} cores, {report['machine']['cpu_model']}, "
          f"load average {report['machine']['load_average_at_start'][0]:.2f}")
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    references: list[Service] = []
    try:
        hello = start_service("bench/hello.py", folder)
        references.append(hello)
        floor = start_floor(folder)
        references.extend(floor)
        urls = {"hello": hello.url, "floor": floor[-1].url}  # the floor's public process

        def main_run(scenarios: list[Scenario], deployment: Deployment, scale: bool) -> None:
            cpu = ProcessCpu(*deployment.pids,
                             *(r.process.popen.pid for r in references if r.process))
            bench = Bench(args, deployment, urls, cpu)
            for scenario in scenarios:
                report["scenarios"].append(bench.run(scenario))
            if scale:
                report["scale"][f"{args.listings}"] = bench.latency(f"{args.listings:,} listings")

        data = seeded(folder / "main", args, args.listings)
        setups: list[tuple[str, Callable[[], Any]]] = [
            ("sqlite", lambda: sqlite_trio(data)),
            ("honcho", lambda: sqlite_trio(data, honcho=True)),
            ("postgresql", lambda: on_postgres(data)),
            ("cluster", lambda: on_postgres(data, processes=2))]
        for setup, deploy in setups:
            scenarios = [s for s in chosen if (setup == "honcho") == s.honcho
                         and s.setup == ("sqlite" if setup == "honcho" else setup)]
            if not scenarios:
                continue
            print(f"  set-up: {setup}")
            with deploy() as deployment:
                main_run(scenarios, deployment, scale=setup == "sqlite" and bool(args.scale))
        if args.scale:
            with sqlite_trio(seeded(folder / "scale", args, args.scale)) as deployment:
                bench = Bench(args, deployment, urls, ProcessCpu())
                report["scale"][f"{args.scale}"] = bench.latency(f"{args.scale:,} listings")
    finally:
        for reference in references:
            reference.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print_report(report, args)
    save(report, args.tag)


def ceiling(report: dict[str, Any]) -> float:
    return max(r["rps"] for r in report["scenarios"] if r["scenario"].startswith("hello"))


def print_report(report: dict[str, Any], args: argparse.Namespace) -> None:
    top = ceiling(report)
    print(f"\nconcurrency {args.connections}, {args.seconds:g}s per scenario, "
          f"ceiling = best hello-world run = {top:,.0f} req/s")
    head = (f"{'scenario':<42} {'req/s':>8} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'errors':>6} {'user/req':>8} {'lost':>5} {'svc cpu ms/req':>14} {'B/req':>7}")
    print(head)
    print("-" * len(head))
    for r in report["scenarios"]:
        r["ratio"] = round(r["rps"] / top, 3)
        cpu = sum(v for k, v in r["cpu_ms_per_request"].items() if k != "wrk")
        print(f"{r['what']:<42} {r['rps']:>8,.0f} {r['ratio']:>6.3f} {r['p50_us'] / 1000:>7.2f} "
              f"{r['p99_us'] / 1000:>7.2f} {r['errors']:>6} "
              f"{r.get('user_calls_per_request', '-'):>8} {r.get('lost', '-'):>5} {cpu:>14.3f} "
              f"{r.get('bytes_per_request', '-'):>7}")
    print("\nservice CPU ms per request, by kind of process (all its processes together):")
    for r in report["scenarios"]:
        if r["scenario"].startswith(("hello", "floor")):
            continue
        print(f"  {r['scenario']:<18} " + ", ".join(
            f"{label} {ms:.3f}" for label, ms in sorted(r["cpu_ms_per_request"].items())
            if label != "wrk"))
    by_name = {r["scenario"]: r for r in report["scenarios"]}
    if "floor" in by_name and "public_p10" in by_name:
        report["page_to_floor"] = round(by_name["public_p10"]["rps"] / by_name["floor"]["rps"], 3)
        print(f"\nthe page does {report['page_to_floor']:.3f} of the floor's req/s")
    if report["scale"]:
        print("\nscale, concurrency 1, GET /public-api/listings?page_size=10")
        for listings, pages in report["scale"].items():
            print(f"  {int(listings):>9,} listings: " + ", ".join(
                f"page_num={p[5:]} p50 {v['p50_ms']:.2f} ms p99 {v['p99_ms']:.2f} ms"
                for p, v in pages.items()))
    report["targets"] = targets(report, top, args)
    print("\ntargets:")
    for name, (ok, detail) in report["targets"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}")


def targets(report: dict[str, Any], top: float, args: argparse.Namespace
            ) -> dict[str, tuple[bool, str]]:
    by_name = {r["scenario"]: r for r in report["scenarios"]}
    checks: dict[str, tuple[bool, str]] = {}
    if "public_p10" in by_name:
        r = by_name["public_p10"]
        checks["public_p10"] = (
            r["ratio"] >= TARGETS["public_p10"] and r["p99_us"] / 1000 < P99_TARGET_MS
            and r["errors"] == 0,
            f"ratio {r['ratio']:.3f} >= {TARGETS['public_p10']}, p99 {r['p99_us'] / 1000:.1f} ms"
            f" < {P99_TARGET_MS:g}, errors {r['errors']} == 0")
    if "public_post" in by_name:
        r = by_name["public_post"]
        checks["public_post"] = (
            r["ratio"] >= TARGETS["public_post"] and r["errors"] == 0 and r["lost"] == 0,
            f"ratio {r['ratio']:.3f} >= {TARGETS['public_post']}, errors {r['errors']} == 0,"
            f" lost {r['lost']} == 0")
    if len(report["scale"]) == 2:
        small, big = (report["scale"][k]["page_1"]["p50_ms"] for k in report["scale"])
        checks["scale"] = (big <= SCALE_TARGET * small,
                           f"page 1 p50 {big:.2f} ms with {args.scale:,} <= {SCALE_TARGET} x "
                           f"{small:.2f} ms with {args.listings:,}")
    return checks


def save(report: dict[str, Any], tag: str, kind: str = "") -> None:
    """Write `report` to bench/results/[kind-]<time>[-tag].json and [kind-]latest.json."""
    RESULTS.mkdir(exist_ok=True)
    prefix = f"{kind}-" if kind else ""
    name = prefix + time.strftime("%Y%m%dT%H%M%S") + (f"-{tag}" if tag else "") + ".json"
    for path in (RESULTS / name, RESULTS / f"{prefix}latest.json"):
        path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {RESULTS / name} (and {prefix}latest.json)")


if __name__ == "__main__":
    main()
