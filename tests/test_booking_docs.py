"""docs/api.md stays true: every booking route and every problem kind is documented."""

from __future__ import annotations

import re
from pathlib import Path

from api.booking import availability, bookings
from api.booking import http as booking_http
from api.booking import series as booking_series

DOC = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text()


def test_every_booking_route_is_documented() -> None:
    rows = re.findall(r"^\| `(GET|POST|DELETE) (/api/v1/[^`?]+)", DOC, re.MULTILINE)
    booking = ("/api/v1/bookings", "/api/v1/availability")  # other parts document theirs
    documented = {(method, path) for method, path in rows if path.startswith(booking)}
    served = {
        (r.method, r.path)  # type: ignore[attr-defined]
        for table in (bookings.routes, booking_series.routes, availability.routes)
        for r in table
    }
    assert documented == served


def test_every_problem_kind_is_documented_with_both_titles() -> None:
    table = DOC[DOC.index("## Errors") :]
    documented = set(re.findall(r"`([a-z-]+)`", table)) - {"invalid_params"}
    assert set(booking_http.TITLES) <= documented
    for english, indonesian in booking_http.TITLES.values():
        assert english and indonesian and english != indonesian
