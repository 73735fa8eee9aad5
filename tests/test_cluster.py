"""Two processes of each service behind nginx, on PostgreSQL: what `make cluster` runs.

Real processes, a real nginx, a real PostgreSQL server. While 300 listings are created
through the public API, one process of each data service is killed with SIGKILL: every
create answered 2xx is readable afterwards and none is made twice (nginx never passes a
POST that reached a process on to another), reads keep answering (a GET is retried on the
other process), and nothing hangs or answers HTML.
"""
from __future__ import annotations

import json
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.cluster import Cluster, start_cluster
from harness.processes import Answer, http, http_raw

CREATES = 300
KILL_AFTER = 60  # answers in before the kill: it lands mid-burst


@pytest.fixture
def cluster(tmp_path: Path, pg_database: Callable[[str], str]) -> Iterator[Cluster]:
    urls = {"listing": pg_database("listings"), "user": pg_database("users")}
    started = start_cluster(tmp_path, processes=2, database_urls=urls,
                            args=("--log_batch_delay=0",))
    yield started
    started.stop()


def answered_json(answer: Answer) -> dict:
    assert answer.headers.get("Content-Type") == "application/json; charset=UTF-8", answer.raw
    return json.loads(answer.raw)


def test_creates_survive_a_sigkill_of_one_process_of_each_data_service(
        cluster: Cluster) -> None:
    url = cluster.public_url + "/public-api"
    owner = http("POST", url + "/users", {"name": "Owner"})[1]["user"]["id"]
    answers: list[tuple[int, int, dict]] = []  # (price sent, status, body)
    reads: Counter[int] = Counter()
    done, enough = threading.Event(), threading.Event()

    def create(price: int) -> None:
        body = json.dumps({"user_id": owner, "listing_type": "rent", "price": price}).encode()
        answer = http_raw("POST", url + "/listings", body,
                          headers={"Content-Type": "application/json"}, timeout=30)
        answers.append((price, answer.status, answered_json(answer)))
        if len(answers) >= KILL_AFTER:
            enough.set()

    def read_until_done() -> None:
        while not done.is_set():
            answer = http_raw("GET", url + "/listings?page_size=5", timeout=30)
            answered_json(answer)
            reads[answer.status] += 1

    reader = threading.Thread(target=read_until_done)
    reader.start()
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(create, 100_000 + n) for n in range(CREATES)]
        assert enough.wait(30)
        cluster.listing[0].stop(signal.SIGKILL)
        cluster.user[0].stop(signal.SIGKILL)
        for future in futures:
            future.result()
    done.set()
    reader.join(30)

    statuses = Counter(status for _, status, _ in answers)
    assert set(statuses) <= {201, 502, 503, 504}, statuses
    assert statuses[201] >= CREATES * 0.9, statuses  # a few may die with their process
    created = {body["listing"]["id"]: price for price, status, body in answers
               if status == 201}
    assert len(created) == statuses[201]  # no id answered twice
    for listing_id, price in created.items():  # every acknowledged create is there
        status, body = http("GET", f"{url}/listings/{listing_id}")
        assert (status, body["listing"]["price"]) == (200, price)
    stored: Counter[int] = Counter()
    for page in range(1, CREATES // 100 + 3):
        status, body = http("GET", f"{url}/listings?page_size=100&page_num={page}")
        stored.update(listing["price"] for listing in body["listings"])
    assert all(count == 1 for count in stored.values()), stored.most_common(3)  # none twice
    assert set(created.values()) <= set(stored)
    assert reads and set(reads) == {200}, reads  # reads went on during the kill
