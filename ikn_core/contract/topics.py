"""Topic names of contract v1: ``ikn/v1/dev/{device_id}/{up|status|down}``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ikn_core.contract.identifiers import ID, ID_PATTERN
from ikn_core.errors import ContractError

ROOT = "ikn/v1/dev"
DEVICE_ID_PATTERN = ID_PATTERN
UP_FILTER = f"{ROOT}/+/up"
STATUS_FILTER = f"{ROOT}/+/status"


class Channel(StrEnum):
    UP = "up"
    STATUS = "status"
    DOWN = "down"


def check_device_id(device_id: str) -> str:
    if not ID.fullmatch(device_id):
        raise ContractError(
            "bad_topic", f"device id {device_id!r} must match {DEVICE_ID_PATTERN}", "device_id"
        )
    return device_id


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    device_id: str
    channel: Channel

    def __post_init__(self) -> None:
        check_device_id(self.device_id)

    def __str__(self) -> str:
        return f"{ROOT}/{self.device_id}/{self.channel}"


def up_topic(device_id: str) -> str:
    return str(DeviceTopic(device_id, Channel.UP))


def status_topic(device_id: str) -> str:
    return str(DeviceTopic(device_id, Channel.STATUS))


def down_topic(device_id: str) -> str:
    return str(DeviceTopic(device_id, Channel.DOWN))


def parse_topic(topic: str) -> DeviceTopic:
    """``ikn/v1/dev/desk-1/up`` -> ``DeviceTopic("desk-1", Channel.UP)``."""
    head, _, rest = topic.rpartition("/")
    root, _, device_id = head.rpartition("/")
    if root != ROOT or rest not in Channel.__members__.values():
        raise ContractError("bad_topic", f"topic {topic!r} is not {ROOT}/<device_id>/<channel>")
    return DeviceTopic(check_device_id(device_id), Channel(rest))


def shared(group: str, topic_filter: str) -> str:
    """A shared subscription (MQTT 5): the broker spreads messages over the group."""
    return f"$share/{group}/{topic_filter}" if group else topic_filter
