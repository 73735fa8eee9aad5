"""The instruction-count bench reads callgrind's totals, whichever line carries them."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.instructions import callgrind_total


@pytest.mark.parametrize("line", ["summary: 123456789", "totals: 123456789 42"])
def test_callgrind_total_reads_the_first_count(tmp_path: Path, line: str) -> None:
    dump = tmp_path / "callgrind.out.1"
    dump.write_text(f"version: 1\ncreator: callgrind-3.19.0\nevents: Ir\n\nfn=(1) main\n5 10\n{line}\n")
    assert callgrind_total(dump) == 123456789


def test_callgrind_total_refuses_a_file_without_totals(tmp_path: Path) -> None:
    dump = tmp_path / "callgrind.out.2"
    dump.write_text("version: 1\nevents: Ir\n")
    with pytest.raises(ValueError):
        callgrind_total(dump)
