"""Identifier patterns, declared once: every Python check uses these, and
tests/test_identifiers.py proves that the JSON Schemas, the OpenAPI document and
the SQL CHECK constraints state the same (anchored ``^...$`` there).
"""

from __future__ import annotations

import re

# Devices (also their MQTT client ids and broker user names), sites, buildings,
# floors, zones, desks, agencies, units and device commands.
ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"
# People (``people.id``): an NIP, or a login with ``.`` and ``@``.
PERSON_ID_PATTERN = r"[A-Za-z0-9_.@-]{1,64}"
# A badge token as a reader sends it (contract v1) ...
BADGE_PATTERN = r"b1:[A-Za-z0-9_-]{16,64}"
# ... and as ``ikn badge enrol`` stores it: HMAC-SHA256 of the card number, base64url.
ENROLLED_BADGE_PATTERN = r"b1:[A-Za-z0-9_-]{43}"

ID = re.compile(ID_PATTERN)
PERSON_ID = re.compile(PERSON_ID_PATTERN)
BADGE = re.compile(BADGE_PATTERN)
ENROLLED_BADGE = re.compile(ENROLLED_BADGE_PATTERN)

ID_RULE = "1 to 64 characters from A-Z a-z 0-9 _ -"


def anchored(pattern: str) -> str:
    """``pattern`` as JSON Schema, OpenAPI and PostgreSQL's ``~`` state it."""
    return f"^{pattern}$"
