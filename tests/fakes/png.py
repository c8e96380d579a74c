"""Stdlib-only PNG decoding/encoding and the image statistics the fake judge uses.

Decoder: 8-bit greyscale, grey+alpha, RGB, RGBA and palette images, non-interlaced, all five
scanline filter types (None, Sub, Up, Average, Paeth) -- which covers Chromium screenshots.
Anything else (interlaced, 16-bit, bad CRC, truncated data, zlib bombs) raises
:class:`PngError` (a ``ValueError``), never crashes or hangs.

Encoder: RGB/RGBA 8-bit with a chosen filter type per row, so tests can build PNGs that use
every filter (and a decoder round-trip proves the unfiltering).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Union

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 40_000_000
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


class PngError(ValueError):
    """The bytes are not a PNG this decoder supports."""


@dataclass
class PngImage:
    width: int
    height: int
    channels: int  # 3 (RGB) or 4 (RGBA) after palette/grey expansion
    pixels: bytes  # row-major, no filter bytes

    def pixel(self, x: int, y: int) -> tuple:
        i = (y * self.width + x) * self.channels
        return tuple(self.pixels[i : i + self.channels])


# ---------------------------------------------------------------------------------- decoding
def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> bytearray:
    stride = width * bpp
    out = bytearray(stride * height)
    prev = bytearray(stride)
    pos = 0
    for y in range(height):
        ftype = raw[pos]
        row = bytearray(raw[pos + 1 : pos + 1 + stride])
        pos += stride + 1
        if ftype == 0:
            pass
        elif ftype == 1:  # Sub
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif ftype == 2:  # Up
            row = bytearray((a + b) & 0xFF for a, b in zip(row, prev))
        elif ftype == 3:  # Average
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:  # Paeth
            for i in range(stride):
                if i >= bpp:
                    a, c = row[i - bpp], prev[i - bpp]
                else:
                    a = c = 0
                b = prev[i]
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                if pa <= pb and pa <= pc:
                    pred = a
                elif pb <= pc:
                    pred = b
                else:
                    pred = c
                row[i] = (row[i] + pred) & 0xFF
        else:
            raise PngError(f"invalid filter type {ftype} on row {y}")
        out[y * stride : (y + 1) * stride] = row
        prev = row
    return out


def decode_png(data: bytes, max_pixels: int = MAX_PIXELS) -> PngImage:
    if not isinstance(data, (bytes, bytearray)) or not data.startswith(SIGNATURE):
        raise PngError("not a PNG (bad signature)")
    pos = len(SIGNATURE)
    ihdr = None
    palette = None
    trns = None
    idat = []
    while True:
        if pos + 8 > len(data):
            raise PngError("truncated PNG (no IEND)")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        if length > len(data):
            raise PngError("chunk length beyond end of data")
        chunk = data[pos + 8 : pos + 8 + length]
        crc_bytes = data[pos + 8 + length : pos + 12 + length]
        if len(chunk) != length or len(crc_bytes) != 4:
            raise PngError("truncated chunk")
        if zlib.crc32(ctype + chunk) & 0xFFFFFFFF != struct.unpack(">I", crc_bytes)[0]:
            raise PngError(f"CRC mismatch in {ctype!r} chunk")
        pos += 12 + length
        if ctype == b"IHDR":
            if length != 13:
                raise PngError("bad IHDR")
            ihdr = struct.unpack(">IIBBBBB", chunk)
        elif ctype == b"PLTE":
            palette = chunk
        elif ctype == b"tRNS":
            trns = chunk
        elif ctype == b"IDAT":
            idat.append(chunk)
        elif ctype == b"IEND":
            break
    if ihdr is None:
        raise PngError("missing IHDR")
    width, height, depth, ctype_, comp, filt, interlace = ihdr
    if width == 0 or height == 0 or width * height > max_pixels:
        raise PngError(f"unsupported image size {width}x{height}")
    if depth != 8:
        raise PngError(f"unsupported bit depth {depth} (only 8)")
    if ctype_ not in _CHANNELS:
        raise PngError(f"bad colour type {ctype_}")
    if comp != 0 or filt != 0:
        raise PngError("unsupported compression/filter method")
    if interlace != 0:
        raise PngError("interlaced PNG not supported")
    if not idat:
        raise PngError("no image data")
    bpp = _CHANNELS[ctype_]
    expected = (width * bpp + 1) * height
    d = zlib.decompressobj()
    try:
        raw = d.decompress(b"".join(idat), expected + 1)
    except zlib.error as e:
        raise PngError(f"corrupt image data: {e}") from None
    if len(raw) < expected:
        raise PngError("image data too short")
    raw = raw[:expected]
    px = _unfilter(raw, width, height, bpp)
    if ctype_ == 2 or ctype_ == 6:
        return PngImage(width, height, bpp, bytes(px))
    if ctype_ == 0:
        return PngImage(width, height, 3, bytes(b for g in px for b in (g, g, g)))
    if ctype_ == 4:
        out = bytearray()
        for i in range(0, len(px), 2):
            g, a = px[i], px[i + 1]
            out += bytes((g, g, g, a))
        return PngImage(width, height, 4, bytes(out))
    # palette
    if palette is None or len(palette) % 3:
        raise PngError("palette image without valid PLTE")
    n = len(palette) // 3
    alpha = trns or b""
    out = bytearray()
    for idx in px:
        if idx >= n:
            raise PngError("palette index out of range")
        out += palette[idx * 3 : idx * 3 + 3]
        out.append(alpha[idx] if idx < len(alpha) else 255)
    return PngImage(width, height, 4, bytes(out))


# ---------------------------------------------------------------------------------- statistics
def image_stats(img: PngImage, max_samples: int = 250_000) -> dict:
    """Coverage and coarse colour count, the inputs of the fake judge's rule.

    * pixels are alpha-composited over white;
    * a pixel is *near-white* when min(R, G, B) >= 240;
    * ``coverage`` = fraction of sampled pixels that are not near-white;
    * ``colours`` = number of coarse colour bins (each channel quantised to 4 levels: 64 bins)
      among the non-near-white pixels that hold at least 0.2 % of the samples (anti-aliasing
      fringes do not count).
    Large images are sampled on a regular grid (at most ``max_samples`` pixels).
    """
    w, h, ch = img.width, img.height, img.channels
    step = 1
    while (w // step) * (h // step) > max_samples:
        step += 1
    px = img.pixels
    bins: dict[int, int] = {}
    samples = 0
    nonwhite = 0
    for y in range(0, h, step):
        base = y * w * ch
        for x in range(0, w, step):
            i = base + x * ch
            r, g, b = px[i], px[i + 1], px[i + 2]
            if ch == 4:
                a = px[i + 3]
                if a != 255:
                    r = (r * a + 255 * (255 - a)) // 255
                    g = (g * a + 255 * (255 - a)) // 255
                    b = (b * a + 255 * (255 - a)) // 255
            samples += 1
            if r >= 240 and g >= 240 and b >= 240:
                continue
            nonwhite += 1
            key = ((r >> 6) << 4) | ((g >> 6) << 2) | (b >> 6)
            bins[key] = bins.get(key, 0) + 1
    threshold = max(1, int(0.002 * samples))
    colours = sum(1 for c in bins.values() if c >= threshold)
    return {
        "width": w,
        "height": h,
        "coverage": nonwhite / samples if samples else 0.0,
        "colours": colours,
    }


# ---------------------------------------------------------------------------------- encoding
def _chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data) & 0xFFFFFFFF)


def _filter_row(ftype: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    n = len(row)
    if ftype == 0:
        return row
    out = bytearray(n)
    for i in range(n):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if ftype == 1:
            pred = a
        elif ftype == 2:
            pred = b
        elif ftype == 3:
            pred = (a + b) >> 1
        elif ftype == 4:
            pred = _paeth(a, b, c)
        else:
            raise ValueError(f"filter type must be 0..4, got {ftype}")
        out[i] = (row[i] - pred) & 0xFF
    return bytes(out)


def encode_png(
    width: int,
    height: int,
    pixels: bytes,
    *,
    alpha: bool = False,
    filter_type: Union[int, str, Callable[[int], int]] = 0,
    level: int = 6,
) -> bytes:
    """Encode 8-bit RGB (``alpha=False``) or RGBA pixels.

    ``filter_type``: an int 0..4 for every row, ``"cycle"`` (row y uses y % 5), or a callable
    ``row_index -> filter type``.
    """
    bpp = 4 if alpha else 3
    stride = width * bpp
    if len(pixels) != stride * height:
        raise ValueError(f"expected {stride * height} pixel bytes, got {len(pixels)}")
    raw = bytearray()
    prev = bytes(stride)
    for y in range(height):
        row = bytes(pixels[y * stride : (y + 1) * stride])
        if filter_type == "cycle":
            ft = y % 5
        elif callable(filter_type):
            ft = int(filter_type(y))
        else:
            ft = int(filter_type)
        raw.append(ft)
        raw += _filter_row(ft, row, prev, bpp)
        prev = row
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(bytes(raw), level)) + _chunk(b"IEND", b"")


def solid_png(width: int, height: int, rgb: Sequence[int] = (255, 255, 255), **kw) -> bytes:
    return encode_png(width, height, bytes(rgb[:3]) * (width * height), **kw)


def stripes_png(width: int, height: int, colours: Iterable[Sequence[int]], **kw) -> bytes:
    """Vertical stripes of the given colours covering the whole image (a 'colourful' picture)."""
    cols = [bytes(c[:3]) for c in colours]
    if not cols:
        raise ValueError("need at least one colour")
    row = b"".join(cols[(x * len(cols)) // width] for x in range(width))
    return encode_png(width, height, row * height, **kw)
