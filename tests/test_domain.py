"""The space model checks itself."""

from __future__ import annotations

import pytest

from ikn_core.contract import Status, encode_status
from ikn_core.domain import Building, Desk, Device, DeviceKind, Floor, Site, Zone
from tests.helpers import SMALL_SITE


def test_a_site_refuses_an_id_used_twice() -> None:
    with pytest.raises(ValueError, match="desk id\\(s\\) used twice: d1"):
        Site(
            SMALL_SITE.buildings,
            SMALL_SITE.floors,
            SMALL_SITE.zones,
            (*SMALL_SITE.desks, Desk("d1", "b1-f1-a", "again", 0, 0)),
        )


def test_a_site_refuses_a_dangling_reference() -> None:
    with pytest.raises(ValueError, match="d9 refers to unknown zone 'nowhere'"):
        Site(
            SMALL_SITE.buildings,
            SMALL_SITE.floors,
            SMALL_SITE.zones,
            (Desk("d9", "nowhere", "lost", 0, 0),),
        )


def test_a_building_needs_a_real_time_zone() -> None:
    assert Building("b", "B").zone_info.key == "Asia/Makassar"
    with pytest.raises(ValueError, match="not an IANA time zone"):
        Building("b", "B", "WITA")


def test_a_desk_sensor_needs_a_desk() -> None:
    with pytest.raises(ValueError, match="needs a desk"):
        Device("desk-x", DeviceKind.DESK_SENSOR, "b1")
    assert Floor("f", "b", "F", 1).level == 1 and Zone("z", "f", "Z").floor_id == "f"


def test_the_will_payload_reads_as_documented() -> None:
    assert encode_status(Status("offline")) == b'{"v":1,"state":"offline"}'
