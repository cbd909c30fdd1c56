"""The MQTT contract, version 1 (see docs/contract.md and ../shared/DESIGN.md).

Topics name the device; payloads are UTF-8 JSON validated here, with the same
rules as the published JSON Schema files beside this module.
"""

from ikn_core.contract.payload import (
    MAX_PAYLOAD_BYTES,
    BadgeTap,
    Batch,
    DeskOccupancy,
    Environment,
    Observation,
    PeopleCount,
    Reading,
    Status,
    decode_batch,
    decode_status,
    encode_batch,
    encode_status,
    make_reading,
)
from ikn_core.contract.topics import (
    DEVICE_ID_PATTERN,
    STATUS_FILTER,
    UP_FILTER,
    Channel,
    DeviceTopic,
    down_topic,
    parse_topic,
    shared,
    status_topic,
    up_topic,
)

__all__ = [
    "DEVICE_ID_PATTERN",
    "MAX_PAYLOAD_BYTES",
    "STATUS_FILTER",
    "UP_FILTER",
    "BadgeTap",
    "Batch",
    "Channel",
    "DeskOccupancy",
    "DeviceTopic",
    "Environment",
    "Observation",
    "PeopleCount",
    "Reading",
    "Status",
    "decode_batch",
    "decode_status",
    "down_topic",
    "encode_batch",
    "encode_status",
    "make_reading",
    "parse_topic",
    "shared",
    "status_topic",
    "up_topic",
]
