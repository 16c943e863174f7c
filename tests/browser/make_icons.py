#!/usr/bin/python3
"""Writes the page's home-screen icons (web/icon-192.png, web/icon-512.png,
web/apple-touch-icon.png): the favicon's red record dot on a dark square, drawn with
anti-aliased edges. Stdlib only (zlib); run once when the design changes:
    /usr/bin/python3 tests/browser/make_icons.py
"""
import os
import struct
import zlib

WEB = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'web')
BG = (0x11, 0x14, 0x17)
RING = (0xf4, 0xf4, 0xf4)
DOT = (0xd7, 0x1a, 0x28)


def png(path, size):
    # full-bleed square (iOS and maskable icons round the corners themselves); the dot sits
    # inside the maskable safe zone (radius 40 % of the size)
    c = (size - 1) / 2.0
    r_ring, r_dot = size * 0.30, size * 0.22
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            d = ((x - c) ** 2 + (y - c) ** 2) ** 0.5
            col = BG
            a = max(0.0, min(1.0, r_ring + 0.5 - d))        # white ring
            col = tuple(round(col[i] * (1 - a) + RING[i] * a) for i in range(3))
            a = max(0.0, min(1.0, r_dot + 0.5 - d))         # red dot
            col = tuple(round(col[i] * (1 - a) + DOT[i] * a) for i in range(3))
            row += bytes(col)
        rows.append(bytes(row))
    raw = zlib.compress(b''.join(rows), 9)

    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', size, size, 8, 2, 0, 0, 0))
                + chunk(b'IDAT', raw) + chunk(b'IEND', b''))


for name, size in (('icon-192.png', 192), ('icon-512.png', 512), ('apple-touch-icon.png', 180)):
    png(os.path.join(WEB, name), size)
    print('wrote web/' + name)
