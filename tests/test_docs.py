"""The curl examples of README.md and docs/ (PAGES), run for real, so the pages cannot drift.

An example is a `$ curl ...` line in a fenced block, followed by what it printed:

    $ curl -s -w '\\nHTTP %{http_code}\\n' localhost:8000/public-api/users/1
    {"user":{"id":1,...}}
    HTTP 200

Each page gets three fresh services (`harness.processes.start_stack`, databases in a temp
folder) and its examples run in page order: later ones use the ids earlier ones created. A
command runs as written, through /bin/sh (some examples pipe), with localhost:6000, 7000 and
8000 pointed at the fresh services. Its output must equal the page's once timestamps
(`created_at`, `updated_at`), `Date` headers, request ids and ETags are masked on both
sides: the only parts of an answer that differ from run to run.

A block that needs a service in a special state says so in a comment just before it, and
that state lasts for the block only:

    <!-- setup: stop user -->        the user service is stopped, started again after
    <!-- setup: freeze listing -->   the listing service is frozen (SIGSTOP), thawed after
    <!-- setup: token s3cret -->     all three run with INTERNAL_TOKEN=s3cret, then without

`DOCS_RECORD=1` writes what the commands printed into the pages instead of comparing, for
a page whose examples changed on purpose: read the diff before committing it. (The suite's
guard against tests writing into the repository then reports the pages as written.)
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.processes import ROOT, Service, Stack, start_stack

PAGES = ("README.md", "docs/api.md", "docs/accounts.md", "docs/price-history.md")
SHOWN_PORTS = {"listing": 6000, "user": 7000, "public": 8000}
SETUP = re.compile(r"<!--\s*setup:\s*(.*?)\s*-->")
MASKS = (
    (re.compile(r'"(created_at|updated_at|changed_at|since|until)":\d{16}\b'),
     r'"\1":<microseconds>'),
    (re.compile(r"^Date: .*$", re.MULTILINE | re.IGNORECASE), "Date: <date>"),
    (re.compile(r"^(X-Request-Id): \S+$", re.MULTILINE | re.IGNORECASE), r"\1: <request id>"),
    # A body's ETag is its hash, so it changes with the timestamps inside.
    (re.compile(r'^(Etag): "[0-9a-f-]+"$', re.MULTILINE | re.IGNORECASE), r"\1: <hash>"),
    # A token is signed over its issue and expiry times, which differ from run to run.
    (re.compile(r'"token":"[A-Za-z0-9_.-]+"'), '"token":"<token>"'),
    (re.compile(r'"expires_at":\d{16}\b'), '"expires_at":<microseconds>'),
)
# `$ NAME=$(...)` sets a shell variable that the page's later commands use, as they would in
# the reader's one shell (each command here runs in a shell of its own).
ASSIGNMENT = re.compile(r"([A-Z][A-Z0-9_]*)=")


@dataclass
class Example:
    line: int  # the 0-based index of its `$ ` line in the page
    command: str
    expected: list[str]
    setup: str = ""


@dataclass
class Block:
    setup: str
    examples: list[Example] = field(default_factory=list)


def parse(text: str) -> list[Block]:
    """The page's example blocks, in order: fenced blocks holding `$ ` lines."""
    lines = text.split("\n")
    blocks: list[Block] = []
    setup, inside = "", False
    block = Block(setup)  # replaced at every fence; only lines inside a fence use it
    for index, line in enumerate(lines):
        if line.startswith("```"):
            if inside and block.examples:
                blocks.append(block)
            if inside:
                setup = ""  # a marker is for the block right after it only
            inside, block = not inside, Block(setup)
            continue
        if not inside:
            if marker := SETUP.search(line):
                setup = marker.group(1)
            continue
        if line.startswith("$ "):
            block.examples.append(Example(index, line[2:], [], block.setup))
        elif block.examples:
            block.examples[-1].expected.append(line)
    for block in blocks:
        for example in block.examples:
            while example.expected and not example.expected[-1]:
                example.expected.pop()
    return blocks


def mask(lines: list[str]) -> str:
    text = "\n".join(lines)
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def run(command: str, stack: Stack, variables: dict[str, str]) -> list[str]:
    """Run `command` as the page shows it, against `stack`, with the shell `variables` the
    page's earlier commands set (and now this one's); what it printed, line by line."""
    for name, shown in SHOWN_PORTS.items():
        port = getattr(stack, name).port
        command = re.sub(rf"\blocalhost:{shown}\b", f"127.0.0.1:{port}", command)
    assigned = ASSIGNMENT.match(command)
    with tempfile.NamedTemporaryFile() as value:
        script = f'{command}\nprintf "%s" "${assigned[1]}" > {value.name}' if assigned else command
        done = subprocess.run(["/bin/sh", "-c", script], cwd=ROOT, capture_output=True,
                              timeout=60, check=False, env={**os.environ, **variables})
        if assigned:
            variables[assigned[1]] = Path(value.name).read_text()
            assert variables[assigned[1]], (command, "set an empty variable", done.stderr)
    assert done.returncode == 0, (command, done.stderr)
    if not done.stdout:
        return []
    return done.stdout.decode("utf-8").replace("\r\n", "\n").rstrip("\n").split("\n")


def restart(service: Service, env: dict[str, str]) -> None:
    service.stop()
    service.env = env
    service.start()


@contextmanager
def prepared(stack: Stack, setup: str) -> Iterator[None]:
    """The state a block's marker asks for, undone after the block."""
    action, _, argument = setup.partition(" ")
    if not setup:
        yield
    elif action == "stop":
        service = getattr(stack, argument)
        service.stop()
        try:
            yield
        finally:
            service.start()
    elif action == "freeze":
        service = getattr(stack, argument)
        service.freeze()
        try:
            yield
        finally:
            service.thaw()
    elif action == "token":
        for service in stack.services:
            restart(service, {"INTERNAL_TOKEN": argument})
        try:
            yield
        finally:
            for service in stack.services:
                restart(service, {"INTERNAL_TOKEN": ""})
    else:
        raise AssertionError(f"unknown setup marker: {setup!r}")


@pytest.mark.parametrize("page", PAGES)
def test_every_example_is_a_curl_command_that_parses(page: str):
    blocks = parse((ROOT / page).read_text(encoding="utf-8"))
    examples = [example for block in blocks for example in block.examples]
    assert len(examples) >= 10, f"{page}: found only {len(examples)} examples"
    for example in examples:
        words = shlex.split(example.command)  # a quoting slip would fail here, not at run time
        assert any("curl" in word for word in words), f"{page}:{example.line + 1}: not curl"
        # An assignment prints nothing; every other example shows what it printed.
        shows_output = not ASSIGNMENT.match(example.command)
        assert bool(example.expected) == shows_output, f"{page}:{example.line + 1}: output"


@pytest.mark.parametrize("page", PAGES)
def test_every_example_answers_what_the_page_shows(page: str, tmp_path: Path):
    path = ROOT / page
    text = path.read_text(encoding="utf-8")
    recording = os.environ.get("DOCS_RECORD") == "1"
    answers: list[tuple[Example, list[str]]] = []
    variables: dict[str, str] = {}
    # The public API allows the example web page's origins, as the Procfile (`make run`) does.
    stack = start_stack(tmp_path, env={"INTERNAL_TOKEN": ""}, public_args=(
        "--cors_origins=http://127.0.0.1:8500,http://localhost:8500",))
    try:
        for block in parse(text):
            with prepared(stack, block.setup):
                for example in block.examples:
                    got = run(example.command, stack, variables)
                    answers.append((example, got))
                    if not recording:
                        assert mask(got) == mask(example.expected), (
                            f"{page}:{example.line + 1}: $ {example.command}")
    finally:
        stack.stop()
    if recording:
        lines = text.split("\n")
        for example, got in reversed(answers):
            start = example.line + 1
            lines[start:start + len(example.expected)] = got
        path.write_text("\n".join(lines), encoding="utf-8")
