"""Logs of `oms serve` and `oms worker`: one JSON object a line on stderr (or plain text), and
every line written while a request is served carries that request's id."""

from __future__ import annotations

import logging
import logging.config
import sys
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS

from oms.settings import Settings

#: The id of the request being served; None outside requests (the worker, startup).
REQUEST_ID: ContextVar[str | None] = ContextVar("oms_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class StderrHandler(logging.Handler):
    """Writes to sys.stderr as it is when a line is written, not as it was when logging was
    configured: an `oms` command run inside another program (a test runner) may find it
    swapped, and the one it started with closed."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def logging_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` document; uvicorn applies it in each of its worker
    processes too."""
    formatter: dict[str, Any]
    if settings.log_format == "json":
        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
            # uvicorn's copy of its message with terminal colours: not for a log file.
            "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
        }
    else:
        formatter = {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] "
                               "%(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"oms": formatter},
        "handlers": {"stderr": {"()": StderrHandler, "formatter": "oms",
                                "filters": ["request_id"]}},
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
        # uvicorn's own lines go through the same handler. Its access log is off: it writes
        # query strings, which hold customers' emails (oms.access writes the path only).
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def configure(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
