"""Logging set-up: text for people, JSON lines (``IKN_LOG_FORMAT=json``) for production."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

from ikn_core.settings import LogSettings


class JsonFormatter(logging.Formatter):
    def __init__(self, role: str = "") -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "role": self.role,
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


def configure(settings: LogSettings, role: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter(role))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)-7s {role:<6} %(name)s: %(message)s")
        )
    logging.basicConfig(level=settings.level, handlers=[handler], force=True)
    logging.getLogger("asyncio").setLevel(logging.WARNING)
