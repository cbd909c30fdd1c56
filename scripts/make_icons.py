"""Draw the app's icon (web/static/icons/): a white check mark in a ring on the pages'
blue (site.css ``--brand``), as an SVG and as PNGs of 192 and 512 px for the manifest
and the home screen, with the standard library alone (zlib, struct): the same geometry,
four samples a pixel for smooth edges. The whole square is painted, so a launcher may
cut it round ("maskable"): the mark stays inside the safe circle (80 %).

    .venv/bin/python scripts/make_icons.py
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "web" / "static" / "icons"
BLUE = (0x0B, 0x4F, 0x8A)
WHITE = (0xFF, 0xFF, 0xFF)
# In a unit square: the ring (centre, radius, half width) and the check's polyline.
RING = (0.5, 0.5, 0.28, 0.045)
CHECK = ((0.36, 0.51), (0.46, 0.61), (0.65, 0.41))
STROKE = 0.055  # the check's half width
SAMPLES = 4


def _segment_distance(x: float, y: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(x - ax - t * dx, y - ay - t * dy)


def inked(x: float, y: float) -> bool:
    """Whether the point (unit square) is white: on the ring or on the check."""
    cx, cy, radius, half = RING
    if abs(math.hypot(x - cx, y - cy) - radius) <= half:
        return True
    return any(_segment_distance(x, y, a, b) <= STROKE for a, b in itertools.pairwise(CHECK))


def pixels(size: int) -> bytes:
    """RGB rows, each led by PNG's filter byte (0: none)."""
    rows = bytearray()
    for py in range(size):
        rows.append(0)
        for px in range(size):
            hits = sum(
                inked((px + (i + 0.5) / SAMPLES) / size, (py + (j + 0.5) / SAMPLES) / size)
                for i in range(SAMPLES)
                for j in range(SAMPLES)
            )
            share = hits / SAMPLES**2
            rows.extend(round(b + (w - b) * share) for b, w in zip(BLUE, WHITE, strict=True))
    return bytes(rows)


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png(size: int) -> bytes:
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(pixels(size), 9))
        + _chunk(b"IEND", b"")
    )


def svg() -> str:
    cx, cy, radius, half = RING
    points = " ".join(f"{x * 512:g},{y * 512:g}" for x, y in CHECK)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512">'
        f'<rect width="512" height="512" fill="#{"".join(f"{c:02x}" for c in BLUE)}"/>'
        f'<circle cx="{cx * 512:g}" cy="{cy * 512:g}" r="{radius * 512:g}" fill="none" '
        f'stroke="#fff" stroke-width="{2 * half * 512:g}"/>'
        f'<polyline points="{points}" fill="none" stroke="#fff" '
        f'stroke-width="{2 * STROKE * 512:g}" stroke-linecap="round" stroke-linejoin="round"/>'
        "</svg>\n"
    )


def main() -> None:
    ICONS.mkdir(parents=True, exist_ok=True)
    (ICONS / "icon.svg").write_text(svg(), encoding="utf-8")
    for size in (192, 512):
        (ICONS / f"icon-{size}.png").write_bytes(png(size))


if __name__ == "__main__":
    main()
