"""Our numpy QR encoder against segno's reference encoder and zxing-cpp's reader."""

from __future__ import annotations

import io
import random
import string
from typing import Any

import numpy as np
import pytest
import segno
import segno.consts
import segno.encoder
import zxingcpp
from PIL import Image

from dealmail.coupons import qr_symbol
from dealmail.coupons.qr import QUIET_ZONE_MODULES, dark_modules, qr_png

reference: Any = segno.encoder
ALPHABET = string.ascii_letters + string.digits + "-_"


def texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    lengths = [1, 9, 17, 30, 45, 66, 66, 66, 80, 106, 130, 150]  # versions 2 to 9
    return [
        "https://shop.example/c/" + "".join(rng.choice(ALPHABET) for _ in range(length))
        for length in (lengths[n % len(lengths)] for n in range(count))
    ]


def masked_grids(text: str) -> tuple[Any, np.ndarray]:
    """The eight masked candidates as scored (format areas light), and the layout."""
    data = text.encode()
    version = qr_symbol._version_for(len(data))
    assert version is not None
    layout = qr_symbol._layout(version)
    bits = np.zeros(layout.bits, dtype=np.uint8)
    stream = np.unpackbits(qr_symbol._with_checks(qr_symbol._codewords(data, layout), layout))
    bits[: stream.size] = stream
    grids = np.repeat(layout.scored[None], 8, axis=0)
    grids[:, layout.rows, layout.cols] = bits[None, :] ^ layout.masks
    return layout, grids


def segno_scores(grids: np.ndarray) -> list[int]:
    width = grids.shape[1]
    return [
        sum(reference.mask_scores(tuple(bytearray(row.tobytes()) for row in grid), width, width))
        for grid in grids
    ]


def test_penalties_are_segnos_for_every_mask() -> None:
    for text in texts(120, seed=1):
        _layout, grids = masked_grids(text)
        assert qr_symbol.penalties(grids).tolist() == segno_scores(grids), text


def test_the_lowest_penalty_mask_is_chosen() -> None:
    for text in texts(60, seed=2):
        layout, grids = masked_grids(text)
        best = int(np.argmin(segno_scores(grids)))
        expected = layout.final[best].copy()
        expected[layout.rows, layout.cols] = grids[best][layout.rows, layout.cols]
        symbol = qr_symbol.qr_modules(text)
        assert symbol is not None
        assert (symbol == expected.astype(bool)).all(), text


@pytest.mark.parametrize("version", range(1, 10))
def test_full_symbols_equal_segnos_for_every_version_and_mask(version: int) -> None:
    # At full capacity no pad codewords are written (segno pads a byte-aligned stream with one
    # more zero byte than ISO asks, so shorter texts legitimately differ in their padding).
    capacity = sum(count * data for count, data, _check in qr_symbol.BLOCKS[version])
    text = "https://shop.example/c/x1y2z3"[: (8 * capacity - 12) // 8].ljust(
        (8 * capacity - 12) // 8, "x"
    )
    layout, grids = masked_grids(text)
    assert layout.version == version
    for mask in range(8):
        ours = layout.final[mask].copy()
        ours[layout.rows, layout.cols] = grids[mask][layout.rows, layout.cols]
        theirs = segno.make(text, error="m", mode="byte", mask=mask, boost_error=False)
        assert theirs.version == version
        assert (np.array([list(row) for row in theirs.matrix], dtype=np.uint8) == ours).all()


def test_the_tables_are_segnos() -> None:
    consts: Any = segno.consts
    for version, groups in qr_symbol.BLOCKS.items():
        reference_groups = tuple(
            (ec.num_blocks, ec.num_data, ec.num_total - ec.num_data)
            for ec in consts.ECC[version][consts.ERROR_LEVEL_M]
        )
        assert groups == reference_groups
        if version > 1:
            assert qr_symbol.ALIGNMENT[version] == tuple(consts.ALIGNMENT_POS[version - 2])
    assert tuple(consts.FORMAT_INFO[:8]) == qr_symbol.FORMAT_M
    assert [qr_symbol.VERSION_INFO[v] for v in (7, 8, 9)] == list(consts.VERSION_INFO[:3])


def test_every_length_decodes_including_the_fallback() -> None:
    for text in [*texts(40, seed=3), "https://shop.example/c/" + "y" * 400, "A"]:
        image = qr_png(text)
        decoded = zxingcpp.read_barcode(Image.open(io.BytesIO(image.png)))
        assert decoded is not None, text
        assert decoded.text == text


def test_quiet_zone_and_long_texts_use_the_other_encoder() -> None:
    modules = dark_modules("https://shop.example/c/" + "z" * 40)
    assert not modules[:QUIET_ZONE_MODULES].any()
    assert not modules[:, -QUIET_ZONE_MODULES:].any()
    assert qr_symbol.qr_modules("https://shop.example/c/" + "y" * 400) is None
