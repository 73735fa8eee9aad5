"""Logging set-up: every line carries the service name and the request id it belongs to.

Tornado runs each request in its own asyncio task, so a context variable set in `prepare()`
follows that request through every await, including into the access log line.
"""
from __future__ import annotations

import contextvars
import json
import logging
import sys
from typing import TYPE_CHECKING

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


def configure_logging(service: str, log_format: str = "text", level: int = logging.INFO) -> None:
    """Send every log line to stderr in the chosen format ("text" or "json")."""
    if log_format not in ("text", "json"):
        raise ValueError(f"--log_format must be 'text' or 'json', not {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter(service))
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
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
