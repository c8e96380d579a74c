"""The stdlib PNG decoder and pixel statistics (svgrft.core.pngutil).

The PNGs are written by an independent encoder below (forward filters), so a bug in the decoder's
inverse filters, channel expansion or compositing shows up as a pixel mismatch."""

from __future__ import annotations

import random
import struct
import zlib

import pytest

from svgrft.core.pngutil import (
    PngError,
    background_color,
    count_color,
    decode_png,
    is_near_uniform,
    mean_abs_diff,
    non_background_fraction,
    pixel,
    png_size,
)


def _chunk(t: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body) & 0xFFFFFFFF)


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def encode(w, h, raw_rows, color_type, depth=8, filters=(0,), palette=None, trns=None):
    """Encode rows of raw sample bytes; row i uses filters[i % len(filters)]."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    bpp = max(1, channels * depth // 8)
    out = bytearray()
    prev = bytes(len(raw_rows[0]))
    for i, row in enumerate(raw_rows):
        ft = filters[i % len(filters)]
        f = bytearray()
        for x in range(len(row)):
            a = row[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            pred = {0: 0, 1: a, 2: b, 3: (a + b) // 2, 4: _paeth(a, b, c)}[ft]
            f.append((row[x] - pred) & 255)
        out.append(ft)
        out += f
        prev = row
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0))
    if palette:
        png += _chunk(b"PLTE", palette)
    if trns:
        png += _chunk(b"tRNS", trns)
    data = zlib.compress(bytes(out))
    png += _chunk(b"IDAT", data[: len(data) // 2]) + _chunk(b"IDAT", data[len(data) // 2 :])  # split IDAT
    return png + _chunk(b"IEND", b"")


def _random_rgb(w, h, seed=1):
    rnd = random.Random(seed)
    return [bytes(rnd.randrange(256) for _ in range(3 * w)) for _ in range(h)]


@pytest.mark.parametrize("filters", [(0,), (1,), (2,), (3,), (4,), (0, 1, 2, 3, 4)])
def test_rgb_all_filters_roundtrip(filters):
    rows = _random_rgb(13, 9)
    w, h, got = decode_png(encode(13, 9, rows, 2, filters=filters))
    assert (w, h) == (13, 9)
    assert got == rows


def test_rgba_composited_over_white():
    # opaque red, transparent red (→ white), half-transparent black (→ mid grey)
    row = bytes([255, 0, 0, 255, 255, 0, 0, 0, 0, 0, 0, 128])
    _, _, got = decode_png(encode(3, 1, [row], 6, filters=(4,)))
    assert got[0][0:3] == bytes([255, 0, 0])
    assert got[0][3:6] == bytes([255, 255, 255])
    assert all(abs(v - 127) <= 1 for v in got[0][6:9])


def test_grey_grey_alpha_16bit_and_palette():
    _, _, g = decode_png(encode(2, 1, [bytes([0, 200])], 0))
    assert g[0] == bytes([0, 0, 0, 200, 200, 200])
    _, _, ga = decode_png(encode(1, 1, [bytes([0, 0])], 4))  # black, fully transparent
    assert ga[0] == bytes([255, 255, 255])
    _, _, g16 = decode_png(encode(1, 1, [bytes([0x12, 0x34, 0xAB, 0xCD, 0xEF, 0x01])], 2, depth=16, filters=(1,)))
    assert g16[0] == bytes([0x12, 0xAB, 0xEF])
    pal = bytes([10, 20, 30, 200, 100, 50])
    _, _, p = decode_png(encode(3, 1, [bytes([0b00010000])], 3, depth=2, palette=pal))
    assert p[0] == bytes([10, 20, 30, 200, 100, 50, 10, 20, 30])
    _, _, g1 = decode_png(encode(3, 1, [bytes([0b10100000])], 0, depth=1))
    assert g1[0] == bytes([255] * 3 + [0] * 3 + [255] * 3)


def test_png_size_and_pixel():
    rows = _random_rgb(7, 5, seed=3)
    png = encode(7, 5, rows, 2, filters=(2,))
    assert png_size(png) == (7, 5)
    assert pixel(png, 6, 4) == tuple(rows[4][18:21])


@pytest.mark.parametrize("bad", [b"", b"GIF89a....", b"\x89PNG\r\n\x1a\n" + b"\x00" * 5, None, "text"])
def test_garbage_raises_png_error(bad):
    with pytest.raises(PngError):
        decode_png(bad)  # type: ignore[arg-type]


def test_decompression_bomb_is_refused():
    png = encode(1, 1, [b"\0\0\0"], 2)
    bomb = png.replace(struct.pack(">II", 1, 1), struct.pack(">II", 100_000, 100_000), 1)
    with pytest.raises(PngError):
        decode_png(bomb)


def test_truncated_data_raises():
    png = encode(4, 4, _random_rgb(4, 4), 2)
    with pytest.raises(PngError):
        decode_png(png[:-30])


def test_uniform_and_fraction_stats():
    w, h = 20, 10
    white = [bytes([255] * 3 * w)] * h
    assert is_near_uniform(encode(w, h, white, 2))
    blue = [bytes([0, 0, 255] * w)] * h  # a single-colour picture is "uniform" against its own background
    assert is_near_uniform(encode(w, h, blue, 2))
    assert not is_near_uniform(encode(w, h, blue, 2), background=(255, 255, 255))
    # 10 red pixels on white: 5 %
    rows = [bytearray(r) for r in white]
    for x in range(10):
        rows[3][3 * x : 3 * x + 3] = bytes([255, 0, 0])
    png = encode(w, h, [bytes(r) for r in rows], 2, filters=(1, 2, 4))
    assert background_color(png) == (255, 255, 255)
    assert non_background_fraction(png) == pytest.approx(10 / 200)
    assert not is_near_uniform(png)
    assert count_color(png, (255, 0, 0), tol=10) == 10
    assert count_color(png, (250, 5, 5), tol=4) == 0
    assert mean_abs_diff(png, encode(w, h, white, 2)) == pytest.approx(10 * 510 / (200 * 3))
