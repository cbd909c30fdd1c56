"""Logging set-up: text for people, JSON lines (``IKN_LOG_FORMAT=json``) for production."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

from ikn_core.settings import LogSettings

# C0 controls (newline and carriage return among them) and DEL, as escapes: a message
# carrying a client's text (a percent-decoded path, a header) cannot start a line of
# its own and pass for another log entry.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}
_CONTROLS.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


class TextFormatter(logging.Formatter):
    """One line per entry whatever the message holds; a traceback follows as usual.
    Formats a copy of the record, so that other handlers see the message unchanged."""

    def format(self, record: logging.LogRecord) -> str:
        escaped = logging.makeLogRecord(record.__dict__)
        escaped.msg, escaped.args = record.getMessage().translate(_CONTROLS), None
        return super().format(escaped)


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
            TextFormatter(f"%(asctime)s %(levelname)-7s {role:<6} %(name)s: %(message)s")
        )
    logging.basicConfig(level=settings.level, handlers=[handler], force=True)
    logging.getLogger("asyncio").setLevel(logging.WARNING)
