"""A small stdlib PNG decoder and pixel statistics (no Pillow/numpy needed).

:func:`decode_png` returns ``(width, height, rows)`` where every row is ``bytes`` of packed **RGB**
triplets: grey and palette images are expanded, 16-bit samples reduced to 8 bits and alpha composited
over white (the renderer's background). Non-interlaced PNGs of every colour type and bit depth are
supported; interlaced ones raise :class:`PngError` (Chromium never writes them).

Statistics are computed per channel with ``bytes.translate`` lookup tables, so a 512×512 image costs
milliseconds, not a Python loop per pixel.
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from itertools import accumulate

__all__ = [
    "PngError",
    "png_size",
    "decode_png",
    "pixel",
    "background_color",
    "color_mask_count",
    "count_color",
    "non_background_fraction",
    "is_near_uniform",
    "mean_abs_diff",
]

_SIG = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


class PngError(ValueError):
    """Not a PNG this decoder can read (or a decompression bomb)."""


def _chunks(data: bytes):
    if not isinstance(data, (bytes, bytearray, memoryview)) or bytes(data[:8]) != _SIG:
        raise PngError("not a PNG (bad signature)")
    pos = 8
    n = len(data)
    while pos + 8 <= n:
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        if pos + 12 + length > n:
            raise PngError(f"truncated {ctype!r} chunk")
        yield ctype, bytes(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
        if ctype == b"IEND":
            return
    raise PngError("truncated PNG (no IEND)")


def png_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from the IHDR chunk without decoding."""
    if not isinstance(data, (bytes, bytearray)) or len(data) < 24 or bytes(data[:8]) != _SIG or data[12:16] != b"IHDR":
        raise PngError("not a PNG (no IHDR)")
    return struct.unpack(">II", data[16:24])


def _unfilter(raw: bytes, h: int, stride: int, bpp: int) -> list[bytes]:
    rows: list[bytes] = []
    prev = bytes(stride)
    mask_hi = int.from_bytes(b"\x80" * stride, "big")
    mask_lo = int.from_bytes(b"\x7f" * stride, "big")
    pos = 0
    for _ in range(h):
        ft = raw[pos]
        line = raw[pos + 1 : pos + 1 + stride]
        pos += 1 + stride
        if ft == 0:
            cur = line
        elif ft == 2:  # Up: bytewise add without carries (SWAR on one big int)
            x = int.from_bytes(line, "big")
            y = int.from_bytes(prev, "big")
            s = ((x & mask_lo) + (y & mask_lo)) ^ ((x ^ y) & mask_hi)
            cur = s.to_bytes(stride, "big")
        elif ft == 1:  # Sub: running sum per channel
            out = bytearray(stride)
            for c in range(bpp):
                out[c::bpp] = bytes(v & 255 for v in accumulate(line[c::bpp]))
            cur = bytes(out)
        elif ft == 3:  # Average
            out = bytearray(line)
            for i in range(stride):
                a = out[i - bpp] if i >= bpp else 0
                out[i] = (out[i] + ((a + prev[i]) >> 1)) & 255
            cur = bytes(out)
        elif ft == 4:  # Paeth
            out = bytearray(line)
            for i in range(bpp):
                out[i] = (out[i] + prev[i]) & 255
            for i in range(bpp, stride):
                a = out[i - bpp]
                b = prev[i]
                c = prev[i - bpp]
                p = a + b - c
                pa = p - a if p > a else a - p
                pb = p - b if p > b else b - p
                pc = p - c if p > c else c - p
                if pa <= pb and pa <= pc:
                    out[i] = (out[i] + a) & 255
                elif pb <= pc:
                    out[i] = (out[i] + b) & 255
                else:
                    out[i] = (out[i] + c) & 255
            cur = bytes(out)
        else:
            raise PngError(f"bad filter type {ft}")
        rows.append(cur)
        prev = cur
    return rows


def _blend_table(alpha_scale: int = 255) -> list[bytes]:
    # table[a] maps a colour value v to v*a/255 + 255*(255-a)/255 (compositing over white)
    return [bytes((v * a + 255 * (255 - a) + 127) // 255 for v in range(256)) for a in range(256)]


_BLEND: list[bytes] | None = None


def decode_png(data: bytes, max_pixels: int = 40_000_000) -> tuple[int, int, list[bytes]]:
    """Decode a PNG to ``(width, height, rows)`` of RGB bytes (alpha composited over white)."""
    global _BLEND
    ihdr = None
    idat = []
    palette = b""
    trns = b""
    for ctype, body in _chunks(data):
        if ctype == b"IHDR":
            if len(body) != 13:
                raise PngError("bad IHDR")
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"PLTE":
            palette = body
        elif ctype == b"tRNS":
            trns = body
        elif ctype == b"IDAT":
            idat.append(body)
    if ihdr is None:
        raise PngError("no IHDR chunk")
    w, h, depth, ctype_, _comp, _filt, interlace = ihdr
    if ctype_ not in _CHANNELS or depth not in (1, 2, 4, 8, 16):
        raise PngError(f"unsupported colour type {ctype_} / bit depth {depth}")
    if interlace:
        raise PngError("interlaced PNG not supported")
    if w <= 0 or h <= 0 or w * h > max_pixels:
        raise PngError(f"image size {w}x{h} out of range")
    ch = _CHANNELS[ctype_]
    bits = ch * depth
    stride = (w * bits + 7) // 8
    bpp = max(1, bits // 8)
    d = zlib.decompressobj()
    try:
        raw = d.decompress(b"".join(idat), (stride + 1) * h + 1)
    except zlib.error as e:
        raise PngError(f"corrupt image data: {e}") from None
    if len(raw) < (stride + 1) * h:
        raise PngError("truncated image data")
    rows = _unfilter(raw, h, stride, bpp)

    out: list[bytes] = []
    if depth == 16:  # keep the high byte of each sample
        rows = [r[0::2] for r in rows]
        depth = 8
    if depth < 8:  # unpack 1/2/4-bit samples (grey or palette)
        per = 8 // depth
        m = (1 << depth) - 1
        unpacked = []
        for r in rows:
            vals = bytearray()
            for byte in r:
                for k in range(per - 1, -1, -1):
                    vals.append((byte >> (k * depth)) & m)
            unpacked.append(bytes(vals[:w]))
        rows = unpacked
        if ctype_ == 0:  # scale grey to 0..255
            scale = bytes(min(255, v * 255 // m) for v in range(256))
            rows = [r.translate(scale) for r in rows]
    if ctype_ == 2:
        return w, h, rows
    if ctype_ == 0:
        for r in rows:
            rgb = bytearray(3 * w)
            rgb[0::3] = r
            rgb[1::3] = r
            rgb[2::3] = r
            out.append(bytes(rgb))
        return w, h, out
    if ctype_ == 3:
        if not palette:
            raise PngError("palette image without PLTE")
        pal = palette.ljust(768, b"\0")
        alphas = trns.ljust(256, b"\xff")
        if _BLEND is None and trns:
            _BLEND = _blend_table()
        tabs = [
            bytes(pal[3 * i + c] if not trns else _BLEND[alphas[i]][pal[3 * i + c]] for i in range(256))
            for c in range(3)
        ]
        for r in rows:
            rgb = bytearray(3 * w)
            for c in range(3):
                rgb[c::3] = r.translate(tabs[c])
            out.append(bytes(rgb))
        return w, h, out
    # 4 (grey+alpha) and 6 (RGBA): composite over white
    if _BLEND is None:
        _BLEND = _blend_table()
    for r in rows:
        if ctype_ == 4:
            g, a = r[0::2], r[1::2]
            src = [g, g, g]
        else:
            src = [r[0::4], r[1::4], r[2::4]]
            a = r[3::4]
        rgb = bytearray(3 * w)
        if a.count(255) == len(a):
            for c in range(3):
                rgb[c::3] = src[c]
        else:
            for c in range(3):
                rgb[c::3] = bytes(_BLEND[al][v] for v, al in zip(src[c], a))
        out.append(bytes(rgb))
    return w, h, out


def _decoded(img):
    if isinstance(img, (bytes, bytearray)):
        return decode_png(bytes(img))
    return img


def pixel(img, x: int, y: int) -> tuple[int, int, int]:
    """RGB of pixel (x, y); ``img`` is PNG bytes or a :func:`decode_png` result."""
    w, h, rows = _decoded(img)
    r = rows[y]
    return r[3 * x], r[3 * x + 1], r[3 * x + 2]


def _near_tables(rgb: tuple[int, int, int], tol: int) -> list[bytes]:
    return [bytes(1 if abs(v - target) <= tol else 0 for v in range(256)) for target in rgb]


def color_mask_count(img, rgb: tuple[int, int, int], tol: int = 0) -> int:
    """Number of pixels whose every channel is within ``tol`` of ``rgb``."""
    w, h, rows = _decoded(img)
    tabs = _near_tables(rgb, tol)
    total = 0
    for r in rows:
        m = -1
        for c in range(3):
            m &= int.from_bytes(r[c::3].translate(tabs[c]), "big")
        total += m.bit_count()
    return total


count_color = color_mask_count


def background_color(img, samples: int = 65536) -> tuple[int, int, int]:
    """The most frequent colour (on an evenly spaced sample of at most ``samples`` pixels)."""
    w, h, rows = _decoded(img)
    step = max(1, (w * h) // samples)
    cnt: Counter = Counter()
    i = 0
    for r in rows:
        for x in range(i % step, w, step):
            cnt[r[3 * x : 3 * x + 3]] += 1
        i += w
    if not cnt:
        return (255, 255, 255)
    c = cnt.most_common(1)[0][0]
    return c[0], c[1], c[2]


def non_background_fraction(img, tol: int = 16, background: tuple[int, int, int] | None = None) -> float:
    """Fraction of pixels that differ (in some channel by more than ``tol``) from the background:
    ``background`` if given, else the most frequent colour."""
    d = _decoded(img)
    w, h, _ = d
    bg = background if background is not None else background_color(d)
    return 1.0 - color_mask_count(d, bg, tol) / float(w * h)


def is_near_uniform(
    img, tol: int = 16, max_fraction: float = 0.005, background: tuple[int, int, int] | None = None
) -> bool:
    """True when at most ``max_fraction`` of the pixels differ from the background colour (a blank or
    single-colour picture)."""
    return non_background_fraction(img, tol=tol, background=background) <= max_fraction


def mean_abs_diff(a, b) -> float:
    """Mean absolute difference over all RGB channels (0–255) of two same-size images."""
    wa, ha, ra = _decoded(a)
    wb, hb, rb = _decoded(b)
    if (wa, ha) != (wb, hb):
        raise PngError(f"size mismatch: {wa}x{ha} vs {wb}x{hb}")
    total = 0
    for x, y in zip(ra, rb):
        if x != y:
            total += sum(abs(p - q) for p, q in zip(x, y))
    return total / float(wa * ha * 3)
