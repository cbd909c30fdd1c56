"""Log lines: one entry is one line in text mode, whatever a client put in the message."""

from __future__ import annotations

import logging

import orjson

from ikn.logs import JsonFormatter, TextFormatter


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("api", logging.WARNING, __file__, 1, msg, args, None)


def test_a_newline_in_a_client_path_cannot_forge_a_log_line() -> None:
    path = "/api/v1/x\n2026-12-06 21:00:00 INFO    api    api.auth: admin token created"
    line = TextFormatter("%(levelname)s %(message)s").format(_record("not found: %s", path))
    assert "\n" not in line
    assert line == "WARNING not found: " + path.replace("\n", "\\n")


def test_other_controls_are_escaped_and_text_kept() -> None:
    line = TextFormatter("%(message)s").format(_record("a\r\tb\x1b[31mc\x7f Ünïcode"))
    assert line == "a\\r\\tb\\x1b[31mc\\x7f Ünïcode"


def test_json_lines_keep_the_message_exact() -> None:
    doc = orjson.loads(JsonFormatter("api").format(_record("a\nb")))
    assert doc["msg"] == "a\nb"  # JSON escapes it itself
