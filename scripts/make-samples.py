#!/usr/bin/env python3
"""Writes the walkthrough's sample photos (docs/samples/*.png): simple drawn products, made here, not copied from anywhere."""
import math, os, struct, zlib

def png(path, width, height, pixel):
    rows = b"".join(b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))

def mug(colour):
    def pixel(x, y):
        body = 70 <= x <= 170 and 60 <= y <= 190
        handle = 170 < x <= 205 and 90 <= y <= 160 and abs(math.hypot(x - 170, y - 125) - 28) < 9
        shade = 0.75 + 0.25 * math.cos((x - 120) / 60)
        return tuple(int(c * shade) for c in colour) if body or handle else (238, 236, 230)
    return pixel

def shoe(colour):
    def pixel(x, y):
        sole = 30 <= x <= 225 and 165 <= y <= 185
        upper = 30 <= x <= 225 and 95 <= y < 165 and (x - 30) * 0.45 + (165 - y) < 95 + (x > 150) * 40
        return (40, 40, 40) if sole else colour if upper else (238, 236, 230)
    return pixel

out = os.path.join(os.path.dirname(__file__), "..", "docs", "samples")
os.makedirs(out, exist_ok=True)
png(os.path.join(out, "red-mug.png"), 256, 256, mug((200, 40, 40)))
png(os.path.join(out, "blue-mug.png"), 256, 256, mug((40, 70, 200)))
png(os.path.join(out, "green-shoe.png"), 256, 256, shoe((40, 160, 70)))
