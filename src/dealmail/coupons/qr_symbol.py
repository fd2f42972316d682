"""QR Code symbols (ISO/IEC 18004) in byte mode at level M, all eight masks scored, in numpy.

zxing-cpp's encoder spends ~0.25 ms a symbol, mostly choosing the mask; here the layout of each
version (function patterns, module order, mask patterns, format and version information) is
built once, the error correction is a table lookup (Reed-Solomon is linear: the check bytes are
the XOR of each data byte's precomputed contribution) and the penalty rules N1-N4 are scored
for the eight masks at once on rows held as 64-bit integers. Tests check the tables, symbols
and scores against segno's reference encoder, whose internals are not used at run time.
The same masks, penalties and choice as segno (checked in tests), in ~0.12 ms. Wider than
56 modules (version 10 and up: about 180 bytes of text), None: the caller uses another one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import cast

import numpy as np

MAX_WIDTH = 56  # a row plus a 4-module light margin each side fits in 64 bits: version 9
# ISO/IEC 18004 tables for level M, versions 1-9: error correction blocks as (count, data
# bytes, check bytes), alignment pattern centres, version information (7 and up).
BLOCKS: dict[int, tuple[tuple[int, int, int], ...]] = {
    1: ((1, 16, 10),),
    2: ((1, 28, 16),),
    3: ((1, 44, 26),),
    4: ((2, 32, 18),),
    5: ((2, 43, 24),),
    6: ((4, 27, 16),),
    7: ((4, 31, 18),),
    8: ((2, 38, 22), (2, 39, 22)),
    9: ((3, 36, 22), (2, 37, 22)),
}
ALIGNMENT = {1: (), 2: (6, 18), 3: (6, 22), 4: (6, 26), 5: (6, 30), 6: (6, 34)}
ALIGNMENT |= {7: (6, 22, 38), 8: (6, 24, 42), 9: (6, 26, 46)}
VERSION_INFO = {7: 0x07C94, 8: 0x085BC, 9: 0x09A99}
FORMAT_M = (0x5412, 0x5125, 0x5E7C, 0x5B4B, 0x45F9, 0x40CE, 0x4F97, 0x4AA0)  # masks 0-7
MASKS: tuple[Callable[[int, int], bool], ...] = (
    lambda i, j: (i + j) % 2 == 0,
    lambda i, j: i % 2 == 0,
    lambda i, j: j % 3 == 0,
    lambda i, j: (i + j) % 3 == 0,
    lambda i, j: (i // 2 + j // 3) % 2 == 0,
    lambda i, j: (i * j) % 2 + (i * j) % 3 == 0,
    lambda i, j: ((i * j) % 2 + (i * j) % 3) % 2 == 0,
    lambda i, j: ((i + j) % 2 + (i * j) % 3) % 2 == 0,
)
_BYTES = np.arange(256, dtype=np.uint8)
_POPCOUNT = np.array([bin(n).count("1") for n in range(256)], dtype=np.int64)


@dataclass(frozen=True)
class _Layout:
    version: int
    width: int
    data_codewords: int
    groups: tuple[tuple[int, int, int], ...]  # (blocks, data bytes each, check bytes each)
    order: np.ndarray  # the final codeword sequence as indexes into data + check bytes
    rows: np.ndarray  # module positions of the final bit stream, in placement order
    cols: np.ndarray
    flat: np.ndarray  # the same as indexes into a flattened symbol
    bits: int  # modules in the encoding region (remainder bits included)
    masks: np.ndarray  # (8, bits) mask values at those positions
    scored: np.ndarray  # (width, width) function patterns, format areas light: what is scored
    final: np.ndarray  # (8, width, width) with format and version information for each mask


def _gf_tables() -> tuple[np.ndarray, np.ndarray]:
    exp = np.zeros(512, dtype=np.int64)
    log = np.zeros(256, dtype=np.int64)
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        value <<= 1
        if value & 0x100:
            value ^= 0x11D
    exp[255:510] = exp[:255]
    return exp, log


_EXP, _LOG = _gf_tables()


def _gf_mul(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else int(_EXP[_LOG[a] + _LOG[b]])


@cache
def _contributions(data: int, check: int) -> np.ndarray:
    """(data, 256, check): the check bytes of a block holding value v at position i, else 0."""
    generator = [1]
    for power in range(check):  # (x - a^0)(x - a^1)...(x - a^(check-1))
        root = int(_EXP[power])
        nxt = [0] * (len(generator) + 1)
        for k, coefficient in enumerate(generator):
            nxt[k] ^= coefficient
            nxt[k + 1] ^= _gf_mul(coefficient, root)
        generator = nxt
    table = np.zeros((data, 256, check), dtype=np.uint8)
    for position in range(data):
        remainder = [0] * check
        message = [0] * data
        message[position] = 1
        for byte in message:  # long division of message * x^check by the generator
            factor = byte ^ remainder[0]
            remainder = [*remainder[1:], 0]
            if factor:
                for k in range(check):
                    remainder[k] ^= _gf_mul(generator[k + 1], factor)
        unit = np.array(remainder, dtype=np.int64)
        scaled = _EXP[(_LOG[_BYTES][:, None] + _LOG[unit][None, :])]
        scaled[0, :] = 0
        scaled[:, unit == 0] = 0
        table[position] = scaled
    return table


def _version_for(length: int) -> int | None:
    """The smallest version holding `length` bytes (mode, 8-bit count, data), up to 9."""
    for version, groups in BLOCKS.items():
        if 12 + 8 * length <= 8 * sum(count * data for count, data, _check in groups):
            return version
    return None


def _width(version: int) -> int:
    return 17 + 4 * version


def _function_patterns(version: int) -> tuple[np.ndarray, np.ndarray]:
    """(modules, reserved): finders with separators, timing, alignment patterns, and the
    format and version areas reserved (light; filled per mask in `_layout`)."""
    width = _width(version)
    modules = np.zeros((width, width), dtype=np.uint8)
    reserved = np.zeros((width, width), dtype=bool)
    finder = np.ones((7, 7), dtype=np.uint8)
    finder[1:6, 1:6] = 0
    finder[2:5, 2:5] = 1
    for row, col in ((0, 0), (0, width - 7), (width - 7, 0)):
        modules[row : row + 7, col : col + 7] = finder
        rows = slice(max(row - 1, 0), row + 8)
        cols = slice(max(col - 1, 0), col + 8)
        reserved[rows, cols] = True  # the finder and its light separator
    modules[6, 8 : width - 8] = (np.arange(8, width - 8) % 2 == 0).astype(np.uint8)
    modules[8 : width - 8, 6] = modules[6, 8 : width - 8]
    reserved[6, :] = True
    reserved[:, 6] = True
    centres = ALIGNMENT[version]
    pattern = np.ones((5, 5), dtype=np.uint8)
    pattern[1:4, 1:4] = 0
    pattern[2, 2] = 1
    corners = {(6, 6), (6, width - 7), (width - 7, 6)}  # under the finders: none there
    for row in centres:
        for col in centres:
            if (row, col) in corners:
                continue
            modules[row - 2 : row + 3, col - 2 : col + 3] = pattern
            reserved[row - 2 : row + 3, col - 2 : col + 3] = True
    reserved[8, :9] = reserved[:9, 8] = True  # format information
    reserved[8, width - 8 :] = reserved[width - 8 :, 8] = True  # with the dark module
    if version >= 7:
        reserved[:6, width - 11 : width - 8] = reserved[width - 11 : width - 8, :6] = True
    return modules, reserved


def _add_information(symbol: np.ndarray, version: int, mask: int) -> None:
    """Format information (level M, this mask), the dark module, version information."""
    width = symbol.shape[0]
    info = FORMAT_M[mask]
    for i in range(8):
        low, high = (info >> i) & 1, (info >> (14 - i)) & 1
        symbol[i + (i >= 6), 8] = low  # skipping the timing row
        symbol[8, i + (i >= 6)] = high
        symbol[8, width - 1 - i] = low
        symbol[width - 1 - i, 8] = high
    symbol[width - 8, 8] = 1
    if version >= 7:
        bits = VERSION_INFO[version]
        for i in range(18):
            bit = (bits >> i) & 1
            symbol[width - 11 + i % 3, i // 3] = bit
            symbol[i // 3, width - 11 + i % 3] = bit


@cache
def _layout(version: int) -> _Layout:
    width = _width(version)
    scored, reserved = _function_patterns(version)
    # The encoding region in placement order (ISO/IEC 18004 7.7.3): two-module columns from
    # the right, alternately upwards and downwards, stepping over the vertical timing column.
    rows: list[int] = []
    cols: list[int] = []
    for right in range(width - 1, 0, -2):
        if right <= 6:
            right -= 1
        for vertical in range(width):
            for z in range(2):
                j = right - z
                upwards = ((right & 2) == 0) ^ (j < 6)
                i = (width - 1 - vertical) if upwards else vertical
                if not reserved[i, j]:
                    rows.append(i)
                    cols.append(j)
    masks = np.array(
        [[bool(f(i, j)) for i, j in zip(rows, cols, strict=True)] for f in MASKS],
        dtype=np.uint8,
    )
    final = np.empty((8, width, width), dtype=np.uint8)
    for mask in range(8):
        final[mask] = scored
        _add_information(final[mask], version, mask)
    groups = BLOCKS[version]
    # Interleaving: data bytes column by column across blocks, then check bytes likewise.
    data_at: list[list[int]] = []
    check_at: list[list[int]] = []
    data_offset = 0
    check_offset = sum(blocks * data for blocks, data, _check in groups)
    for blocks, data, check in groups:
        for _ in range(blocks):
            data_at.append(list(range(data_offset, data_offset + data)))
            check_at.append(list(range(check_offset, check_offset + check)))
            data_offset += data
            check_offset += check
    order: list[int] = []
    for blocks_at in (data_at, check_at):
        for column in range(max(len(block) for block in blocks_at)):
            order += [block[column] for block in blocks_at if column < len(block)]
    return _Layout(
        version=version,
        width=width,
        data_codewords=data_offset,
        groups=groups,
        order=np.array(order, dtype=np.intp),
        rows=np.array(rows, dtype=np.intp),
        cols=np.array(cols, dtype=np.intp),
        flat=np.array(rows, dtype=np.intp) * width + np.array(cols, dtype=np.intp),
        bits=len(rows),
        masks=masks,
        scored=scored,
        final=final,
    )


def _codewords(data: bytes, layout: _Layout) -> np.ndarray:
    """Mode, count, data, terminator, padding (ISO/IEC 18004 7.4) as data codewords."""
    count_bits = 8 if layout.version < 10 else 16
    value = (0b0100 << count_bits) | len(data)
    value = (value << (8 * len(data))) | int.from_bytes(data, "big")
    used = 4 + count_bits + 8 * len(data)
    capacity = 8 * layout.data_codewords
    terminator = min(4, capacity - used)
    used += terminator
    padding = terminator + (-used) % 8
    used += (-used) % 8
    stream = (value << padding).to_bytes(used // 8, "big")
    pads = layout.data_codewords - len(stream)
    return np.frombuffer(stream + b"\xec\x11" * (pads // 2) + b"\xec" * (pads % 2), np.uint8)


def _with_checks(codewords: np.ndarray, layout: _Layout) -> np.ndarray:
    checks = []
    start = 0
    for blocks, data, check in layout.groups:
        block = codewords[start : start + blocks * data].reshape(blocks, data)
        table = _contributions(data, check)
        checks.append(np.bitwise_xor.reduce(table[np.arange(data), block], axis=1).ravel())
        start += blocks * data
    return cast(np.ndarray, np.concatenate([codewords, *checks])[layout.order])


def _as_words(grids: np.ndarray) -> np.ndarray:
    """(k, n, width) 0/1 rows → (k, n) integers: module j at bit 59 - j (4 light bits above)."""
    packed = np.packbits(grids, axis=2)
    words = np.zeros((*grids.shape[:2], 8), dtype=np.uint8)
    words[..., : packed.shape[2]] = packed
    return words.view(">u8")[..., 0].astype(np.uint64) >> np.uint64(4)


def _popcount_rows(words: np.ndarray) -> np.ndarray:
    """Set bits summed over the last axis of a uint64 array."""
    if hasattr(np, "bitwise_count"):  # numpy 2
        return cast(np.ndarray, np.bitwise_count(words).sum(axis=-1, dtype=np.int64))
    counts = _POPCOUNT[np.ascontiguousarray(words).view(np.uint8)]
    return cast(np.ndarray, counts.sum(axis=-1))


_ONE, _TWO, _THREE, _FOUR = (np.uint64(n) for n in range(1, 5))
_FIVE, _SIX, _TEN = np.uint64(5), np.uint64(6), np.uint64(10)


def penalties(grids: np.ndarray) -> np.ndarray:
    """Rules N1 + N2 + N3 + N4 of ISO/IEC 18004 7.8.3.1, scored as segno scores them, for
    each of the (k, width, width) grids. Bits: `x << n` puts module j+n where module j is."""
    count, width, _ = grids.shape
    lines = _as_words(np.concatenate([grids, grids.transpose(0, 2, 1)], axis=1))
    inside = np.uint64(((1 << width) - 1) << (60 - width))  # the symbol's modules in a word
    pairs = inside & (inside << _ONE)
    # same[j]: module j has the colour of module j+1
    same = ~(lines ^ (lines << _ONE)) & pairs
    # N1: a run of 5 + i same-coloured modules scores 3 + i = its windows of five + 2
    five = same & (same << _ONE) & (same << _TWO) & (same << _THREE)
    starts = five & ~(same >> _ONE)
    # N2: 2x2 blocks of one colour, 3 each
    rows = lines[:, :width]
    vertical = ~(rows[:, :-1] ^ rows[:, 1:]) & inside
    blocks = same[:, : width - 1] & vertical & (vertical << _ONE)
    # N3: dark-light-dark-dark-dark-light-dark with 4 light modules before or after it (the
    # margin counts as light), 40 each; like segno, a counted pattern hides one that starts 4
    # or 6 modules on (inside it). Chains of three such overlapping patterns may differ.
    light = ~lines
    found = lines & (light << _ONE) & (lines << _TWO) & (lines << _THREE)
    found &= (lines << _FOUR) & (light << _FIVE) & (lines << _SIX)
    dark2 = lines | (lines >> _ONE)
    dark4 = dark2 | (dark2 >> _TWO)  # a dark module among j-3..j
    candidates = found & ~((dark4 >> _ONE) & (dark4 << _TEN))
    counted = candidates & ~((candidates >> _FOUR) | (candidates >> _SIX))
    counts = _popcount_rows(np.stack([five, starts, counted]))
    n2 = 3 * _popcount_rows(blocks)
    # N4: 10 per 5 % away from half dark
    dark = grids.reshape(count, -1).sum(axis=1).tolist()
    n4 = np.array([10 * int(abs(d / width**2 * 100 - 50) / 5) for d in dark], dtype=np.int64)
    return cast(np.ndarray, counts[0] + 2 * counts[1] + 40 * counts[2] + n2 + n4)


def qr_modules(text: str) -> np.ndarray | None:
    """The symbol's dark modules (width × width booleans, no quiet zone), or None when the
    text needs a version this encoder leaves to others (wider than MAX_WIDTH)."""
    data = text.encode("utf-8")
    version = _version_for(len(data))
    if version is None:
        return None
    layout = _layout(version)
    bits = np.zeros(layout.bits, dtype=np.uint8)
    stream = np.unpackbits(_with_checks(_codewords(data, layout), layout))
    bits[: stream.size] = stream
    masked = bits[None, :] ^ layout.masks
    grids = np.repeat(layout.scored.reshape(1, -1), 8, axis=0)
    grids[:, layout.flat] = masked
    best = int(np.argmin(penalties(grids.reshape(8, layout.width, layout.width))))
    symbol = layout.final[best].reshape(-1).astype(bool)
    symbol[layout.flat] = masked[best]
    return cast(np.ndarray, symbol.reshape(layout.width, layout.width))
