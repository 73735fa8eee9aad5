"""The process harness that tests and bench share (harness/processes.py): a service that
cannot start fails the caller at once, saying why, and leaves nothing running or open."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.processes import Service, free_port


def test_a_service_that_exits_at_start_up_fails_at_once_with_its_log(tmp_path: Path) -> None:
    service = Service("listing_service.py", free_port(), ["--database_url=nosuch://x"],
                      tmp_path / "listing.log")
    started = time.monotonic()
    with pytest.raises(RuntimeError) as raised:
        service.start()
    assert time.monotonic() - started < 10  # not the 15 s a service is given to come up
    assert "exited (" in str(raised.value)
    assert "database_url" in str(raised.value)  # the end of its log: what it objected to
    assert service.process is not None and service.process.popen.poll() is not None
    assert service.process._log.closed
