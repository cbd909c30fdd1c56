"""Badge pseudonymisation: the raw card number never leaves the agent.

A driver reports a badge tap with the card number as the reader gives it
(``{"card": "0004829001", "direction": "in"}``); the agent replaces it, before the
reading is numbered, stored or published, with the contract's token
(docs/contract.md, "Badge pseudonymisation")::

    token = "b1:" + base64url_without_padding(HMAC-SHA256(site_key, card_number))

the full 32-byte MAC, 43 characters after ``b1:``. An error never repeats the card
number, so it cannot reach a log line either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from ikn_core.contract import Observation
from ikn_core.errors import ContractError

CARD_FIELD = "card"
MIN_KEY_BYTES = 16


def badge_token(site_key: bytes, card_number: str) -> str:
    """The contract's badge token for ``card_number`` (UTF-8, no separators)."""
    mac = hmac.new(site_key, card_number.encode(), hashlib.sha256).digest()
    return "b1:" + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def pseudonymise(obs: Observation, site_key: bytes | None) -> Observation:
    """``obs`` with its ``card`` field replaced by the ``badge`` token (other
    observations are returned as they are); raise ContractError, naming no card
    number, when it cannot be done."""
    if CARD_FIELD not in obs.fields:
        return obs
    card = obs.fields[CARD_FIELD]
    if site_key is None:
        raise ContractError("bad_field", "no site key: a card number is never sent", CARD_FIELD)
    if type(card) is not str or not card.isprintable() or not 1 <= len(card) <= 64:
        raise ContractError("bad_field", "expected a card number of 1-64 characters", CARD_FIELD)
    fields: Mapping[str, Any] = {
        **{k: v for k, v in obs.fields.items() if k != CARD_FIELD},
        "badge": badge_token(site_key, card),
    }
    return Observation(obs.kind, obs.ts, fields)
