"""Codec for the brush "RLE" of Label Studio (the `value.rle` list of a `brushlabels` result).

Label Studio carries segmentation masks in this format both ways: its exports hold the masks drawn by
annotators, and pre-annotations (a model's masks shown to annotators to correct) must be sent in it.
The project reads and writes these lists itself rather than depending on label-studio-sdk, whose
pinned dependencies clash with the project's.

The format is thi.ng's rle-pack applied to the flattened RGBA image (H * W * 4 bytes, row-major).
The stream is big-endian at the bit level:

- header: the number of values (32 bits), the word size minus one (5 bits), then four run-length
  field widths minus one (4 bits each);
- then tokens until all values are produced: a flag bit (1 = one value repeated, 0 = literal
  values), 2 bits choosing one of the four field widths, the count minus one in that width, then
  the repeated value once or each literal value, every value in the word size;
- zero bits pad the last byte.

The mask lives in the alpha channel: Label Studio's editor and converter both read every 4th byte.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

# Parameters that Label Studio's converter writes, kept so that `encode` matches it byte for byte.
_WORD_BITS = 8
_RUN_FIELD_BITS = (3, 4, 8, 16)
_LONGEST_RUN = 1 << _RUN_FIELD_BITS[-1]
_CHANNELS = 4


def encode(mask: np.ndarray) -> list[int]:
    """RLE list of a (H, W) 0/1 or bool mask, as Label Studio accepts it in a pre-annotation.

    The image written is RGBA with 255 in all four channels where the mask is on and 0 elsewhere,
    which is what the converter's `mask2rle` produces from a 0/255 image; the output is identical
    to it, including its habit of adding a whole zero byte when the bits already end on a byte.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"The mask must be 2-D (H, W), got shape {mask.shape}.")
    if not np.isin(mask, (0, 1)).all():
        raise ValueError("The mask must hold only 0 and 1 (or False and True).")

    pixels = mask.astype(bool).ravel()
    n_values = pixels.size * _CHANNELS
    bits = [f"{n_values:032b}", f"{_WORD_BITS - 1:05b}"]
    bits += [f"{width - 1:04b}" for width in _RUN_FIELD_BITS]

    # Every pixel contributes four equal bytes, so each run of pixels is one run of 4 * length bytes,
    # never shorter than 4: only repeat tokens are needed.
    run_starts = np.flatnonzero(np.diff(pixels, prepend=~pixels[:1]))
    run_lengths = np.diff(run_starts, append=pixels.size) * _CHANNELS
    for start, length in zip(run_starts.tolist(), run_lengths.tolist()):
        bits += _repeat_tokens(length, 255 if pixels[start] else 0)

    stream = "".join(bits)
    stream += "0" * (8 - len(stream) % 8)
    return list(int(stream, 2).to_bytes(len(stream) // 8, "big"))


def _repeat_tokens(length: int, value: int) -> list[str]:
    """Bit strings of the repeat tokens for `length` copies of `value`, choosing widths as the converter does.

    Runs longer than 256 use the 16-bit field, split into chunks of at most 65536 values.
    """
    for tier, width in enumerate(_RUN_FIELD_BITS[:-1]):
        if length <= 1 << width:
            return [f"1{tier:02b}{length - 1:0{width}b}{value:0{_WORD_BITS}b}"]
    tier, width = len(_RUN_FIELD_BITS) - 1, _RUN_FIELD_BITS[-1]
    tokens = []
    while length > 0:
        chunk = min(length, _LONGEST_RUN)
        tokens.append(f"1{tier:02b}{chunk - 1:0{width}b}{value:0{_WORD_BITS}b}")
        length -= chunk
    return tokens


def decode(rle: Sequence[int], height: int, width: int) -> np.ndarray:
    """(H, W) uint8 alpha channel (0..255) of the RGBA image that a Label Studio RLE list describes.

    Reads any rle-pack stream whose words fit in a byte, not only the ones `encode` writes: the
    editor's own encoder also uses literal tokens and may pick other field widths.
    Raises ValueError when the list cannot be the RLE of a height x width image.
    """
    for value in rle:
        if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value <= 255):
            raise ValueError(f"The RLE must hold integers in 0..255 (bytes), found {value!r}.")

    reader = _BitReader(bytes(int(value) for value in rle))
    n_values = reader.read(32)
    expected = height * width * _CHANNELS
    if n_values != expected:
        raise ValueError(f"The RLE holds {n_values} values but a {height}x{width} RGBA image needs {expected}.")
    word_bits = reader.read(5) + 1
    if word_bits > 8:
        raise ValueError(f"The RLE uses {word_bits}-bit words, which cannot be bytes of an RGBA image.")
    field_bits = [reader.read(4) + 1 for _ in range(4)]

    out = np.zeros(n_values, dtype=np.uint8)
    position = 0
    while position < n_values:
        repeated = reader.read(1)
        count = reader.read(field_bits[reader.read(2)]) + 1
        end = position + count
        if end > n_values:
            raise ValueError(f"An RLE token runs to value {end}, past the {n_values} values declared.")
        if repeated:
            out[position:end] = reader.read(word_bits)
        else:
            out[position:end] = [reader.read(word_bits) for _ in range(count)]
        position = end
    return out.reshape(height, width, _CHANNELS)[:, :, _CHANNELS - 1]


class _BitReader:
    """Reads unsigned big-endian bit fields in order from a byte string."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    def read(self, n_bits: int) -> int:
        end = self._position + n_bits
        if end > len(self._data) * 8:
            raise ValueError("The RLE stream ends before all the declared values are read.")
        first_byte, last_byte = self._position // 8, (end + 7) // 8
        chunk = int.from_bytes(self._data[first_byte:last_byte], "big")
        self._position = end
        return (chunk >> (last_byte * 8 - end)) & ((1 << n_bits) - 1)
