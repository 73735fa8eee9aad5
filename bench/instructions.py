"""`make bench-instructions`: CPU instructions per request of each service, under callgrind.

    .venv/bin/python -m bench.instructions [--seconds 15] [--tag try-x]

Requests per second on this shared machine move by 10 to 20% from one run to the next, so a
change worth 3 to 8% cannot be seen in `make bench`. The instructions a request costs hardly
move: callgrind counts them (valgrind's own CPU model, not the machine's), within 0.6% from
run to run. What they do not show is what the machine adds around them: context
switches, cache misses, the hand-over between a service's loop and its database thread.
And callgrind counts every turn of a `rep stos`/`rep movs` (how memset and memcpy fill and
copy big blocks) as one instruction: filling 64 KiB counts 65,536, for well under a
microsecond of real work. So: this for "does the change make a request do less work",
`make bench` for the whole.

Each service runs alone under callgrind (the public API with the other two running
natively behind it), is warmed up, has its counters zeroed, then serves `wrk -c4` for
`--seconds`; its instructions (all its threads) are divided by the requests it answered.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load import Load, run_wrk
from bench.run import save
from bench.seed import seed
from harness.processes import ROOT, free_port, start_service, wait_until_up

IDS = "3,1,7,12,99,5,8,13,21,34"  # a page's worth of owners, in no order


@dataclass(frozen=True)
class Measured:
    name: str
    what: str
    script: str
    path: str
    database: str = ""  # its SQLite file, for a data service
    behind: bool = False  # the two data services run natively behind it (the public API)


MEASURED = [
    Measured("hello", "hello-world JSON handler", "bench/hello.py", "/"),
    Measured("listing", "listing service: GET /listings?page_size=10", "listing_service.py",
             "/listings?page_size=10", database="listings.db"),
    Measured("user", "user service: GET /users?ids=<10 ids>", "user_service.py",
             f"/users?ids={IDS}", database="users.db"),
    Measured("public", "public API: GET /public-api/listings?page_size=10 (its own share)",
             "public_api.py", "/public-api/listings?page_size=10", behind=True),
]


def callgrind_total(dump: Path) -> int:
    """The instruction count a callgrind dump file totals."""
    for line in dump.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise ValueError(f"no totals in {dump}")


def measure(item: Measured, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    extra = [f"--db_path={folder / item.database}"] if item.database else []
    natives = []
    if item.behind:
        natives = [start_service(script, folder, f"--db_path={folder / db}")
                   for script, db in (("listing_service.py", "listings.db"),
                                      ("user_service.py", "users.db"))]
        extra = [f"--listing_service_url={natives[0].url}", f"--user_service_url={natives[1].url}"]
    port = free_port()
    prefix = folder / f"callgrind-{item.name}"
    log = open(folder / f"{item.name}.log", "wb")  # noqa: SIM115 (the process writes it until stopped)
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={prefix}.%p", "-q",
         sys.executable, str(ROOT / item.script), f"--port={port}", *extra],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, timeout=120)  # a Python start-up under valgrind takes seconds
        print(f"  {item.name:<8} warm-up {args.warmup:g}s, measure {args.seconds:g}s ...",
              flush=True)
        run_wrk(Load(url + item.path, args.warmup, args.connections))
        subprocess.run(["callgrind_control", "-z", str(process.pid)], check=True,
                       capture_output=True)
        result = run_wrk(Load(url + item.path, args.seconds, args.connections))
        subprocess.run(["callgrind_control", "-d", str(process.pid)], check=True,
                       capture_output=True)
        dumps = sorted(folder.glob(f"callgrind-{item.name}.{process.pid}.*"),
                       key=lambda p: p.stat().st_mtime)
        instructions = callgrind_total(dumps[-1])
    finally:
        process.terminate()
        process.wait(60)
        log.close()
        for native in natives:
            native.stop()
    errors = result["non_2xx"] + result["socket_errors"] + result["timeouts"]
    return {"name": item.name, "what": item.what, "requests": result["requests"],
            "errors": errors, "instructions": instructions,
            "instructions_per_request": round(instructions / max(result["requests"], 1))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured run per service")
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--only", default="", help="comma-separated: hello,listing,user,public")
    parser.add_argument("--tag", default="", help="label for this run in the results file name")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: `make bench-instructions` installs it")
    chosen = [m for m in MEASURED if not args.only or m.name in args.only.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="bench-instructions-"))
    try:
        seed(folder, 1000, 10_000)
        rows = [measure(item, folder, args) for item in chosen]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    hello = next((r["instructions_per_request"] for r in rows if r["name"] == "hello"), None)
    print(f"\n{'':<70} {'instructions':>13} {'x hello':>8} {'requests':>9} {'errors':>6}")
    for row in rows:
        if hello:
            row["x_hello"] = round(row["instructions_per_request"] / hello, 3)
        print(f"{row['what']:<70} {row['instructions_per_request']:>13,} "
              f"{row.get('x_hello', '-'):>8} {row['requests']:>9,} {row['errors']:>6}")
    save({"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
          "settings": vars(args), "measured": rows}, args.tag, "instructions")


if __name__ == "__main__":
    main()
