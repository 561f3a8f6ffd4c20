"""Label Studio brush RLE: golden lists from Label Studio's converter, round trips and malformed input."""

from __future__ import annotations

import numpy as np
import pytest

from al.brush_rle import decode, encode

# Masks and the lists that label-studio-sdk's `converter.brush.mask2rle(mask * 255)` gives for them.
_M34 = [[0, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 1]]
_M34_RLE = [0, 0, 0, 48, 57, 27, 252, 96, 19, 255, 198, 1, 127, 254, 216, 4, 127, 224]
_RING = [
    [1, 1, 1, 1, 1, 1, 1],
    [1, 0, 0, 0, 0, 0, 1],
    [1, 0, 1, 1, 1, 0, 1],
    [1, 0, 0, 0, 0, 0, 1],
    [1, 1, 1, 1, 1, 1, 0],
]
_RING_RLE = [0, 0, 0, 140, 57, 27, 254, 31, 255, 194, 96, 19, 255, 198, 1, 111, 254, 48, 9, 255, 240, 152, 6, 27, 255,
             140, 0]
_SPECKLE = [
    [0, 0, 0, 1, 1, 0, 1],
    [0, 0, 1, 1, 1, 1, 1],
    [0, 0, 0, 0, 0, 0, 1],
    [1, 0, 1, 1, 0, 1, 0],
    [0, 0, 1, 1, 1, 1, 0],
]
_SPECKLE_RLE = [0, 0, 0, 140, 57, 27, 253, 176, 9, 255, 227, 0, 143, 254, 112, 12, 39, 255, 133, 192, 39, 255, 140, 2,
                127, 248, 192, 35, 255, 182, 1, 127, 254, 48, 0]
# One 400-value run fills exactly 80 bits: the converter still appends a whole zero byte.
_ONES_10X10_RLE = [0, 0, 1, 144, 57, 27, 255, 1, 143, 255, 0]
# 80000 values in one run: a 65536-value token, then the rest still in the 16-bit field.
_ONES_200X100_RLE = [0, 1, 56, 128, 57, 27, 255, 255, 255, 255, 231, 15, 255, 224]
_ZEROS_2X2_RLE = [0, 0, 0, 16, 57, 27, 253, 240, 0]

_GOLDEN = [
    pytest.param(np.array(_M34), _M34_RLE, id="3x4"),
    pytest.param(np.array(_RING), _RING_RLE, id="5x7-ring"),
    pytest.param(np.array(_SPECKLE), _SPECKLE_RLE, id="5x7-speckle"),
    pytest.param(np.ones((10, 10), dtype=int), _ONES_10X10_RLE, id="10x10-ones-byte-aligned"),
    pytest.param(np.ones((200, 100), dtype=int), _ONES_200X100_RLE, id="200x100-ones-long-run"),
    pytest.param(np.zeros((2, 2), dtype=int), _ZEROS_2X2_RLE, id="2x2-zeros"),
]


@pytest.mark.parametrize(("mask", "rle"), _GOLDEN)
def test_encode_matches_label_studio_converter(mask: np.ndarray, rle: list[int]) -> None:
    assert encode(mask) == rle


@pytest.mark.parametrize(("mask", "rle"), _GOLDEN)
def test_decode_of_converter_output_gives_the_mask(mask: np.ndarray, rle: list[int]) -> None:
    alpha = decode(rle, *mask.shape)
    assert alpha.dtype == np.uint8
    np.testing.assert_array_equal(alpha, mask * 255)


def _single_pixel() -> np.ndarray:
    mask = np.zeros((5, 7), dtype=np.uint8)
    mask[2, 3] = 1
    return mask


@pytest.mark.parametrize(
    "mask",
    [
        pytest.param(np.zeros((3, 4), dtype=np.uint8), id="all-zero"),
        pytest.param(np.ones((5, 7), dtype=np.uint8), id="all-one"),
        pytest.param(_single_pixel(), id="single-pixel"),
        pytest.param(np.ones((1, 1), dtype=np.uint8), id="1x1"),
        pytest.param(np.random.default_rng(0).random((5, 7)) < 0.5, id="5x7-random-bool"),
        pytest.param((np.random.default_rng(1).random((64, 48)) < 0.5).astype(np.uint8), id="64x48-random"),
        pytest.param((np.random.default_rng(2).random((64, 48)) < 0.01).astype(np.uint8), id="64x48-sparse"),
    ],
)
def test_decode_inverts_encode(mask: np.ndarray) -> None:
    alpha = decode(encode(mask), *mask.shape)
    assert alpha.shape == mask.shape
    np.testing.assert_array_equal(alpha, mask.astype(np.uint8) * 255)


def test_bool_and_int_masks_encode_alike() -> None:
    mask = np.random.default_rng(3).random((6, 9)) < 0.5
    assert encode(mask) == encode(mask.astype(np.int64))


def test_decode_reads_literal_tokens_and_other_field_widths() -> None:
    # A 1x4 RGBA image, field widths (2, 5, 8, 16): literal 10 20 30 40, six zeros repeated,
    # literal 50 60 70, then 200 repeated three times; checked against the converter's decode_rle.
    rle = [0, 0, 0, 16, 56, 163, 248, 194, 133, 7, 138, 41, 64, 4, 100, 120, 141, 128, 178, 0]
    np.testing.assert_array_equal(decode(rle, 1, 4), [[40, 0, 60, 200]])


def test_decode_accepts_numpy_integers() -> None:
    np.testing.assert_array_equal(decode(np.array(_M34_RLE), 3, 4), np.array(_M34) * 255)


@pytest.mark.parametrize(
    ("rle", "height", "width", "message"),
    [
        pytest.param(_M34_RLE[:10], 3, 4, "ends before", id="truncated-body"),
        pytest.param(_M34_RLE[:3], 3, 4, "ends before", id="truncated-header"),
        pytest.param([], 3, 4, "ends before", id="empty"),
        pytest.param(_M34_RLE, 3, 5, "needs 60", id="wrong-size"),
        pytest.param([*_M34_RLE[:5], 300, *_M34_RLE[6:]], 3, 4, "found 300", id="value-300"),
        pytest.param([*_M34_RLE[:5], -1, *_M34_RLE[6:]], 3, 4, "found -1", id="negative"),
        pytest.param([*_M34_RLE[:5], 1.5, *_M34_RLE[6:]], 3, 4, r"integers in 0\.\.255", id="float"),
        pytest.param([*_M34_RLE[:5], "27", *_M34_RLE[6:]], 3, 4, r"integers in 0\.\.255", id="string"),
        pytest.param([0, 0, 0, 4, *_ZEROS_2X2_RLE[4:]], 1, 1, "past the 4 values", id="run-overflow"),
        pytest.param([0, 0, 0, 16, 121, *_ZEROS_2X2_RLE[5:]], 2, 2, "16-bit words", id="word-size-16"),
    ],
)
def test_decode_rejects_malformed_rle(rle: list, height: int, width: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode(rle, height, width)


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        pytest.param(np.array(_M34) * 255, "only 0 and 1", id="0-255"),
        pytest.param(np.zeros((2, 3, 4), dtype=np.uint8), "2-D", id="3-d"),
    ],
)
def test_encode_rejects_non_binary_or_non_2d_masks(mask: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode(mask)
