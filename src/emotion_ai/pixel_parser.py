"""Parses columns of space-separated 0..255 pixel strings in one compiled pass over their bytes.

The strings arrive as Arrow string arrays: one contiguous byte buffer plus row offsets, so the
parser walks the bytes once (numba, rows in parallel) and writes pixels straight into a uint8
array, with per-row facts (pixel count, range, non-digit characters) that validation judges. A bad
row never stops the parse: it is reported by its facts, and the images are withheld.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa

_SPACE, _TAB, _ZERO = 32, 9, 48
TOO_LONG = 1000
"""Value given to a token of more than three digits: always out of the 0..255 range."""


@dataclass
class PixelRows:
    """Per-row facts about a column of space-separated pixel strings."""

    count: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    non_numeric: np.ndarray
    images: np.ndarray | None
    """(rows, n_pixels) uint8, or None when any row is malformed (or there are no rows)."""

    @classmethod
    def concatenate(cls, parts: list[PixelRows]) -> PixelRows:
        """The rows of consecutive parts as one; images only when every part has them."""
        facts = [np.concatenate([getattr(part, name) for part in parts]) if parts else np.zeros(0, dtype)
                 for name, dtype in (("count", np.int64), ("minimum", np.int16), ("maximum", np.int16),
                                     ("non_numeric", bool))]
        well_formed = bool(parts) and all(part.images is not None for part in parts)
        return cls(*facts, np.concatenate([part.images for part in parts]) if well_formed else None)


@numba.njit(cache=True, parallel=True, nogil=True)
def _parse_rows(data, offsets, n_pixels, images, count, minimum, maximum, non_numeric):  # pragma: no cover - compiled
    """Fills images[row] and the row's facts from data[offsets[row]:offsets[row + 1]].

    A token is a run of non-space bytes; its value is its digits read as a number (a token of
    more than three characters is TOO_LONG). A byte that is neither space nor digit marks the row.
    """
    for row in numba.prange(len(offsets) - 1):
        start, end = offsets[row], offsets[row + 1]
        tokens, value, length, low, high, bad = 0, 0, 0, TOO_LONG, -1, False
        for position in range(start, end + 1):
            byte = data[position] if position < end else _SPACE
            if byte == _SPACE or byte == _TAB:
                if length:
                    if length > 3:
                        value = TOO_LONG
                    if tokens < n_pixels:
                        images[row, tokens] = min(value, 255)
                    tokens += 1
                    low, high = min(low, value), max(high, value)
                    value, length = 0, 0
                continue
            digit = byte - _ZERO
            if digit < 0 or digit > 9:
                bad, digit = True, 0
            if length < 4:
                value = value * 10 + digit
            length += 1
        count[row], non_numeric[row] = tokens, bad
        minimum[row], maximum[row] = (low, high) if tokens else (-1, -1)


def parse_pixel_column(column: pa.Array | pa.ChunkedArray, n_pixels: int) -> PixelRows:
    """Parses an Arrow column of pixel strings (nulls read as empty strings) into one uint8 array."""
    rows = len(column)
    images = np.zeros((rows, n_pixels), np.uint8)
    count, non_numeric = np.zeros(rows, np.int64), np.zeros(rows, bool)
    minimum, maximum = np.zeros(rows, np.int16), np.zeros(rows, np.int16)
    start = 0
    for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
        part = slice(start, start + len(chunk))
        data, offsets = _bytes_and_offsets(chunk)
        _parse_rows(data, offsets, n_pixels, images[part], count[part], minimum[part], maximum[part],
                    non_numeric[part])
        start = part.stop
    well_formed = rows > 0 and (count == n_pixels).all() and not non_numeric.any() and (maximum <= 255).all()
    return PixelRows(count, minimum, maximum, non_numeric, images if well_formed else None)


def _bytes_and_offsets(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The array's string bytes and its rows' 64-bit offsets into them, without copying the bytes."""
    strings = strings.cast(pa.large_string()).fill_null("")
    _, offsets, data = strings.buffers()
    offsets = np.frombuffer(offsets, np.int64, len(strings) + 1, strings.offset * 8)
    return (np.frombuffer(data, np.uint8) if data is not None else np.zeros(1, np.uint8)), offsets
