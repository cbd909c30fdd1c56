"""A floor's plan drawing and the desks placed on it (pure: no I/O).

``check_plan`` takes an uploaded file and gives it back with its type and size, or
refuses it (``PlanRefused``, naming the field ``file``): a PNG by its signature and
its IHDR chunk; an SVG by a strict reading that refuses rather than cleans. An SVG is
refused when it has a document type or entity (no entity expansion, no outside
entity), a processing instruction other than the XML declaration, an element that is
not a drawing element of the SVG namespace (``script``, ``foreignObject``, ``style``,
``iframe``, anything of another namespace), an event attribute (``on...``), a link
(``href``) anywhere but inside the document (``#id``), or a ``url(...)``, ``javascript:``
or ``@import`` in any attribute. What is left can only draw.

``check_desk`` checks a desk's new place, equipment, state and assignment as the
import checks those fields (``ikn_core.io_fields``), each refusal naming its field.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from xml.etree import ElementTree

from ikn_core import io_fields
from ikn_core.errors import IknError

MAX_BYTES = 1024 * 1024  # the pages' whole request may be no larger (aiohttp's default)
MAX_SIDE = 100_000.0  # of the plan, in its own units (floor_plans' CHECK)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
# The SVG elements that only draw (no script, no foreign content, no style sheet).
DRAWING = frozenset(
    {
        "svg", "g", "defs", "symbol", "use", "title", "desc", "metadata",
        "path", "rect", "circle", "ellipse", "line", "polyline", "polygon",
        "text", "tspan", "textPath",
        "linearGradient", "radialGradient", "stop", "pattern", "clipPath", "mask", "marker",
    }
)  # fmt: skip
_LENGTH = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(px)?\s*")
_UNSAFE_VALUE = re.compile(r"url\s*\(|javascript:|@import|expression\s*\(", re.IGNORECASE)
# Desk coordinates are grid steps (web.desks.CELL plan units a step); a floor is smaller.
COORDINATE_MAX = 1000.0


class PlanRefused(IknError):
    """An uploaded plan or a desk's values cannot be used: ``field`` names which,
    ``code`` the reason's stable key (a page's message), ``reason`` says why."""

    def __init__(self, field: str, code: str, reason: str) -> None:
        self.field = field
        self.code = code
        self.reason = reason
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True, slots=True)
class PlanImage:
    content_type: str  # image/svg+xml or image/png
    data: bytes
    width: float  # in the plan's units: the SVG's viewBox or size, the PNG's pixels
    height: float


def check_plan(data: bytes) -> PlanImage:
    """The plan ``data`` as stored, or ``PlanRefused`` (field ``file``)."""
    if not data:
        raise PlanRefused("file", "empty", "the file is empty")
    if len(data) > MAX_BYTES:
        raise PlanRefused("file", "too-large", f"larger than {MAX_BYTES} bytes")
    if data.startswith(PNG_SIGNATURE):
        return _png(data)
    return _svg(data)


def _png(data: bytes) -> PlanImage:
    # The first chunk must be IHDR: length 13, then width and height (RFC 2083 4.1.1).
    if len(data) < 33 or data[8:16] != b"\x00\x00\x00\x0dIHDR":
        raise PlanRefused("file", "not-an-image", "a PNG without its IHDR header")
    width, height = struct.unpack(">II", data[16:24])
    return PlanImage("image/png", data, *_sides(float(width), float(height)))


def _sides(width: float, height: float) -> tuple[float, float]:
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise PlanRefused("file", "bad-size", f"width and height must be 1-{MAX_SIDE:g}")
    return width, height


def _svg(data: bytes) -> PlanImage:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PlanRefused("file", "not-an-image", "neither a PNG nor an SVG (UTF-8)") from None
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise PlanRefused("file", "unsafe-svg", "an SVG with a document type or entity")
    if re.search(r"<\?(?!xml\s)", text):
        raise PlanRefused("file", "unsafe-svg", "an SVG with a processing instruction")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        raise PlanRefused("file", "not-an-image", "neither a PNG nor a well-formed SVG") from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise PlanRefused("file", "not-an-image", "not an SVG (its root is not <svg>)")
    for element in root.iter():
        _safe(element)
    return PlanImage("image/svg+xml", data, *_svg_size(root))


def _safe(element: ElementTree.Element) -> None:
    namespace, _, name = str(element.tag).rpartition("}")
    if namespace != "{" + SVG_NS or name not in DRAWING:
        raise PlanRefused("file", "unsafe-svg", f"an SVG with <{name}>, which is not allowed")
    for attribute, value in element.attrib.items():
        local = attribute.rpartition("}")[2]
        if local.lower().startswith("on"):
            raise PlanRefused("file", "unsafe-svg", f"an SVG with the event attribute {local}")
        if local == "href" and not value.strip().startswith("#"):
            raise PlanRefused("file", "unsafe-svg", "an SVG linking outside itself")
        if _UNSAFE_VALUE.search(value):
            raise PlanRefused("file", "unsafe-svg", f"an SVG with a reference in {local}")


def _svg_size(root: ElementTree.Element) -> tuple[float, float]:
    box = root.get("viewBox")
    if box:
        parts = box.replace(",", " ").split()
        try:
            _, _, width, height = (float(p) for p in parts)
        except ValueError:
            raise PlanRefused("file", "bad-size", "an SVG with an unreadable viewBox") from None
        return _sides(width, height)
    sides = [_LENGTH.fullmatch(root.get(name, "")) for name in ("width", "height")]
    if sides[0] is None or sides[1] is None:
        raise PlanRefused("file", "bad-size", "an SVG needs a viewBox, or a width and height")
    return _sides(float(sides[0][1]), float(sides[1][1]))


@dataclass(frozen=True, slots=True)
class DeskChange:
    """What the floor-plan editor sets on a desk (every field: the form sends all)."""

    desk_id: str
    x: float
    y: float
    equipment: tuple[str, ...]
    disabled: bool
    assigned_to: str | None  # a person id; None: not assigned


def check_desk(
    desk_id: str, x: str, y: str, *, equipment: str, disabled: bool, assigned_to: str
) -> DeskChange:
    """The form's values, checked as the import checks a desk's (``PlanRefused``
    naming the field; coordinates from 0 to ``COORDINATE_MAX`` grid steps)."""
    place = []
    for name, raw in (("x", x), ("y", y)):
        try:
            value = io_fields.number(raw.strip())
        except ValueError as exc:
            raise PlanRefused(name, "bad-number", str(exc)) from None
        if not 0 <= value <= COORDINATE_MAX:
            raise PlanRefused(name, "bad-number", f"must be from 0 to {COORDINATE_MAX:g}")
        place.append(round(value, 3))
    try:
        tags = io_fields.tags(equipment)
    except ValueError as exc:
        raise PlanRefused("equipment", "bad-equipment", str(exc)) from None
    person = assigned_to.strip() or None
    if person is not None:
        try:
            io_fields.person_id(person)
        except ValueError as exc:
            raise PlanRefused("assigned_to", "bad-person", str(exc)) from None
    return DeskChange(desk_id, place[0], place[1], tags, disabled, person)
