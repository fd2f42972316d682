"""QR images of coupon URLs: zxing-cpp's encoder, written as a 1-bit PNG without Pillow.

Measured here: zxing-cpp encodes in ~0.3 ms where segno/qrcode with automatic masking take
~10 ms; this PNG writer takes ~0.06 ms where Pillow's resize + 1-bit save takes ~0.9 ms
(zlib level 1: 0.03 ms for ~560 bytes, where level 6 takes 0.09 ms for ~400 bytes).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import zxingcpp

EC_LEVEL = "M"  # survives a scratched phone screen, keeps the symbol small
QUIET_ZONE_MODULES = 4  # zxing-cpp's add_quiet_zones draws exactly four modules
TARGET_PIXELS = 264  # about 6-7 cm on a phone held under a till scanner
MIN_SCALE = 4
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class QrImage:
    png: bytes
    size: int  # width = height in pixels, quiet zone included
    modules: int  # symbol width in modules, quiet zone included


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_from_modules(dark: np.ndarray, scale: int) -> bytes:
    """A greyscale 1-bit PNG; each module becomes a scale×scale block (rows stored once)."""
    rows = np.packbits(~np.repeat(dark, scale, axis=1), axis=1)  # bit 1 = white
    height = dark.shape[0] * scale
    width = dark.shape[1] * scale
    scanlines = b"".join((b"\x00" + row.tobytes()) * scale for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(scanlines, 1))
        + _chunk(b"IEND", b"")
    )


def scale_for(modules: int) -> int:
    return max(MIN_SCALE, TARGET_PIXELS // modules)


def qr_png(text: str) -> QrImage:
    """The QR code of `text` at error correction M with a 4-module quiet zone, as PNG bytes."""
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level=EC_LEVEL)
    modules = np.asarray(barcode.to_image(scale=1, add_quiet_zones=True)) < 128
    scale = scale_for(modules.shape[0])
    return QrImage(
        png=png_from_modules(modules, scale),
        size=modules.shape[0] * scale,
        modules=int(modules.shape[0]),
    )
