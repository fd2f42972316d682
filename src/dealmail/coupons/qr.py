"""QR images of coupon URLs: our numpy encoder (zxing-cpp's for long texts), a 1-bit PNG.

Measured here, with a different URL each time: zxing-cpp encodes in ~0.25 ms, mostly choosing
the mask; `qr_symbol` builds the same standard symbol (all eight masks scored) in ~0.12 ms;
segno/qrcode take ~10 ms. This PNG writer takes ~0.04 ms where Pillow's resize + 1-bit save
takes ~0.9 ms (zlib level 1: 0.03 ms for ~560 bytes, where level 6 takes 0.09 ms for ~400).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from dealmail.coupons.qr_symbol import qr_modules

EC_LEVEL = "M"  # survives a scratched phone screen, keeps the symbol small
QUIET_ZONE_MODULES = 4  # as zxing-cpp's add_quiet_zones draws
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
    """A greyscale 1-bit PNG; each module becomes a scale×scale block."""
    rows = np.packbits(~np.repeat(dark, scale, axis=1), axis=1)  # bit 1 = white
    height = dark.shape[0] * scale
    width = dark.shape[1] * scale
    lines = np.zeros((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)  # filter byte 0: none
    lines[:, 1:] = rows
    scanlines = np.repeat(lines, scale, axis=0).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(scanlines, 1))
        + _chunk(b"IEND", b"")
    )


def scale_for(modules: int) -> int:
    return max(MIN_SCALE, TARGET_PIXELS // modules)


def dark_modules(text: str) -> np.ndarray:
    """The symbol of `text` at error correction M with its 4-module quiet zone, True = dark."""
    symbol = qr_modules(text)
    if symbol is None:  # longer than our encoder takes
        import zxingcpp  # only then: it weighs ~5 MB in every composing process

        barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level=EC_LEVEL)
        return np.asarray(barcode.to_image(scale=1, add_quiet_zones=True)) < 128
    width = symbol.shape[0] + 2 * QUIET_ZONE_MODULES
    modules = np.zeros((width, width), dtype=bool)  # np.pad costs 0.08 ms for the same
    modules[QUIET_ZONE_MODULES:-QUIET_ZONE_MODULES, QUIET_ZONE_MODULES:-QUIET_ZONE_MODULES] = symbol
    return modules


def qr_png(text: str) -> QrImage:
    """The QR code of `text` at error correction M with a 4-module quiet zone, as PNG bytes."""
    modules = dark_modules(text)
    scale = scale_for(modules.shape[0])
    return QrImage(
        png=png_from_modules(modules, scale),
        size=modules.shape[0] * scale,
        modules=int(modules.shape[0]),
    )
