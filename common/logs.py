"""Logging set-up: every line carries the service name and the request id it belongs to.

Tornado runs each request in its own asyncio task, so a context variable set in `prepare()`
follows that request through every await, including into the access log line.
"""
from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import sys
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from tornado.web import RequestHandler

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
access_log = logging.getLogger("tornado.access")


class _RequestIdFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "service": getattr(record, "service", "-"),
            "request_id": getattr(record, "request_id", "-"),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(service)s [%(request_id)s] %(name)s: %(message)s"


class BatchingHandler(logging.Handler):
    """Writes lines to `stream` in batches, each batch in ONE write: every `capacity` lines,
    at once for a WARNING or worse, and at the latest `delay` seconds after a batch's first
    line. A line logged off the event loop (start-up, another thread) is written at once.

    Each write() to a pipe is a system call for us and a wake-up for its reader: a line per
    write was three of each per public page, one per service.
    """

    def __init__(self, stream: IO[str], delay: float, capacity: int = 64) -> None:
        super().__init__()
        self.stream = stream
        self.delay = delay
        self.capacity = capacity
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record))
        except Exception:
            self.handleError(record)
            return
        if record.levelno >= logging.WARNING or len(self._lines) >= self.capacity:
            self.flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if self._timer is not None and self._timer_loop is loop:
            return  # this batch's write is already scheduled
        if loop is None or self._timer is not None:
            # Off the loop, or a write scheduled on another loop (a closed one never runs it).
            self.flush()
            return
        self._timer_loop = loop
        self._timer = loop.call_later(self.delay, self.flush)

    def flush(self) -> None:
        assert self.lock is not None  # logging.Handler.__init__ creates it
        with self.lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self._lines:
                return
            text = "\n".join(self._lines) + "\n"
            self._lines.clear()
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # stderr is gone (its reader died, or it is closed): nowhere left to say so

    def close(self) -> None:
        self.flush()
        super().close()


def configure_logging(service: str, log_format: str = "text", level: int = logging.INFO,
                      batch_delay: float = 0.0) -> None:
    """Send every log line to stderr in the chosen format ("text" or "json").

    With `batch_delay` > 0, lines are written in batches (see `BatchingHandler`).
    """
    if log_format not in ("text", "json"):
        raise ValueError(f"--log_format must be 'text' or 'json', not {log_format!r}")
    handler: logging.Handler = (BatchingHandler(sys.stderr, batch_delay) if batch_delay > 0
                                else logging.StreamHandler(sys.stderr))
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter(service))  # outermost: it reads the request's context
    # Neither format shows the caller's file and line, the thread or the process: skip
    # working them out for every line (the logging HOWTO's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    for old in root.handlers:
        old.flush()
    root.handlers[:] = [handler]
    root.setLevel(level)


def log_request(handler: RequestHandler) -> None:
    """Tornado's `log_function`: one access line per request (the path, never the query)."""
    status = handler.get_status()
    duration_ms = round(1000.0 * handler.request.request_time(), 2)
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    fields = {"method": handler.request.method, "path": handler.request.path,
              "status": status, "duration_ms": duration_ms}
    access_log.log(level, "%s %s %d %.2fms", fields["method"], fields["path"], status,
                   duration_ms, extra={"fields": fields})
