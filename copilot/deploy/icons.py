"""The add-in and Teams icons: written and checked with the standard library alone.

Office wants 16/32/80 px ribbon icons; Teams wants a 192×192 full-colour icon and a 32×32
outline that is white on transparent. The defaults are drawn here (a white four-point sparkle on
a blue tile) so that a fresh checkout can build every package without an image library; a
deployer may replace the files in ``manifest/icons`` with their own, and the builder then checks
sizes and the outline's colours with :func:`png_info` and :func:`decode_rgba` before packaging.
"""

from __future__ import annotations

import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from copilot.errors import CopilotError

Kind = Literal["color", "outline"]
SIGNATURE = b"\x89PNG\r\n\x1a\n"
TILE = (15, 108, 189)  # the blue of the tile behind the sparkle
# file name -> (size, kind): what the manifests reference and the Teams package carries.
ICON_FILES: dict[str, tuple[int, Kind]] = {
    "icon-16.png": (16, "color"),
    "icon-32.png": (32, "color"),
    "icon-80.png": (80, "color"),
    "color.png": (192, "color"),
    "outline.png": (32, "outline"),
}
MAX_ICON_BYTES = 1_000_000


class IconError(CopilotError, ValueError):
    """An icon file is not a PNG of the size and colours its place requires."""

    kind = "bad_icon"
    status = 400
    title = "An icon cannot be used"


@dataclass(frozen=True)
class PngInfo:
    width: int
    height: int
    bit_depth: int
    color_type: int  # 6 = RGBA, 2 = RGB, 3 = palette, ...
    interlaced: bool


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_rgba(width: int, height: int, pixels: list[bytes]) -> bytes:
    """An 8-bit RGBA PNG from ``height`` rows of ``4 * width`` bytes each."""
    if len(pixels) != height or any(len(row) != 4 * width for row in pixels):
        raise ValueError("pixel rows do not match the size")
    raw = b"".join(b"\x00" + row for row in pixels)  # filter type 0 (None) on every row
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def _chunks(data: bytes):
    if not data.startswith(SIGNATURE):
        raise IconError("not a PNG file (bad signature)")
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        crc = data[pos + 8 + length : pos + 12 + length]
        if len(body) != length or len(crc) != 4:
            raise IconError("truncated PNG chunk")
        if struct.unpack(">I", crc)[0] != zlib.crc32(kind + body):
            raise IconError(f"corrupt PNG chunk {kind!r} (CRC mismatch)")
        yield kind, body
        if kind == b"IEND":
            return
        pos += 12 + length
    raise IconError("PNG ends without an IEND chunk")


def png_info(data: bytes) -> PngInfo:
    """Size and pixel format from the IHDR chunk, after checking every chunk to IEND (so a
    truncated or corrupted file is refused here, not in the Office client)."""
    chunks = list(_chunks(data))
    kind, body = chunks[0]
    if kind != b"IHDR" or len(body) != 13:
        raise IconError("PNG does not start with a valid IHDR chunk")
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
    if not (0 < width <= 4096 and 0 < height <= 4096):
        raise IconError(f"implausible PNG size {width}×{height}")
    return PngInfo(width, height, depth, color, bool(interlace))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def decode_rgba(data: bytes) -> list[bytes]:
    """Rows of RGBA bytes of a non-interlaced 8-bit RGBA PNG (the outline icon's format)."""
    info = png_info(data)
    if (info.bit_depth, info.color_type, info.interlaced) != (8, 6, False):
        raise IconError("expected an 8-bit RGBA, non-interlaced PNG")
    compressed = b"".join(body for kind, body in _chunks(data) if kind == b"IDAT")
    stride = 4 * info.width
    expected = (stride + 1) * info.height
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, expected + 1)  # bounded: no zip bombs
    except zlib.error as exc:
        raise IconError(f"corrupt PNG image data: {exc}") from exc
    if len(raw) != expected:
        raise IconError("PNG image data does not match its size")
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(info.height):
        start = y * (stride + 1)
        ftype, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - 4] if i >= 4 else 0
            up, up_left = prev[i], (prev[i - 4] if i >= 4 else 0)
            if ftype == 1:
                line[i] = (line[i] + left) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + up) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif ftype == 4:
                line[i] = (line[i] + _paeth(left, up, up_left)) & 0xFF
            elif ftype != 0:
                raise IconError(f"unknown PNG filter type {ftype}")
        rows.append(bytes(line))
        prev = line
    return rows


def _sparkle(x: float, y: float, radius: float) -> bool:
    """Inside a four-point star (an astroid) centred on the origin."""
    return abs(x) ** (2 / 3) + abs(y) ** (2 / 3) <= radius ** (2 / 3)


def _tile(x: float, y: float, corner: float) -> bool:
    """Inside a rounded square spanning [-1, 1]²."""
    dx, dy = max(abs(x) - (1 - corner), 0.0), max(abs(y) - (1 - corner), 0.0)
    return dx * dx + dy * dy <= corner * corner


def render(size: int, kind: Kind) -> bytes:
    """The default icon as PNG bytes, anti-aliased by 4×4 supersampling."""
    samples = 4
    rows: list[bytes] = []
    for py in range(size):
        row = bytearray()
        for px in range(size):
            tile = star = 0
            for sy in range(samples):
                for sx in range(samples):
                    x = ((px + (sx + 0.5) / samples) / size) * 2 - 1
                    y = ((py + (sy + 0.5) / samples) / size) * 2 - 1
                    tile += _tile(x, y, 0.28)
                    star += _sparkle(x, y, 0.72 if kind == "color" else 0.95)
            n = samples * samples
            if kind == "outline":
                row += bytes((255, 255, 255, round(255 * star / n)))
                continue
            s = star / n  # white sparkle over the blue tile
            rgb = (round(c * (1 - s) + 255 * s) for c in TILE)
            row += bytes((*rgb, round(255 * tile / n)))
        rows.append(bytes(row))
    return encode_rgba(size, size, rows)


def write_default_icons(folder: Path) -> list[Path]:
    """(Re)draw every default icon into ``folder``: ``python -m copilot.deploy.icons DIR``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (size, kind) in ICON_FILES.items():
        path = folder / name
        path.write_bytes(render(size, kind))
        written.append(path)
    return written


def check_icon(name: str, data: bytes) -> None:
    """Refuse an icon whose size or colours Office/Teams would reject (or render badly)."""
    if name not in ICON_FILES:
        raise IconError(f"{name}: not one of the icons the manifests use")
    size, kind = ICON_FILES[name]
    if len(data) > MAX_ICON_BYTES:
        raise IconError(f"{name}: {len(data)} bytes, more than {MAX_ICON_BYTES}")
    try:
        info = png_info(data)
    except IconError as exc:
        raise IconError(f"{name}: {exc}") from exc
    if (info.width, info.height) != (size, size):
        raise IconError(f"{name}: {info.width}×{info.height} px, must be {size}×{size}")
    if kind == "outline":
        try:
            rows = decode_rgba(data)
        except IconError as exc:
            raise IconError(f"{name}: {exc}") from exc
        for row in rows:
            for i in range(0, len(row), 4):
                r, g, b, a = row[i : i + 4]
                if a and min(r, g, b) < 240:
                    raise IconError(f"{name}: the outline icon must be white on transparent")


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("manifest/icons")
    for p in write_default_icons(target):
        print(p)
