"""Parses Kaggle CSV text into uint8 pixel rows in compiled passes over its bytes (numba, lines in
parallel).

A block of complete CSV lines is split at its newlines; in each line the pixel field is found
(fields end at commas outside double quotes) and its space-separated 0..255 values are written
straight into a uint8 row, with per-row facts (pixel count, range, non-digit characters) that
validation judges. What remains of each line, its other fields with the pixel field emptied, is a
far smaller CSV text that Arrow's reader takes on. A bad row never stops the parse: it is reported
by its facts (its image row holds whatever it had, clipped), so that validation can set it aside and
keep the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

_TAB, _NEWLINE, _RETURN, _SPACE, _QUOTE, _COMMA, _MINUS, _ZERO = 9, 10, 13, 32, 34, 44, 45, 48
TOO_LONG = 1000
"""Value given to a token of more than three digits: always out of the 0..255 range."""
_PIECES = 64
"""Pieces a block is cut into to find its newlines in parallel."""
_STRIDE = 64


@dataclass
class PixelRows:
    """Per-row facts about a column of space-separated pixel strings."""

    count: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    non_numeric: np.ndarray
    images: np.ndarray | None
    """(rows, n_pixels) uint8, or None when there are no rows; a malformed row's image is garbage
    (its facts say so)."""

    @classmethod
    def concatenate(cls, parts: list[PixelRows]) -> PixelRows:
        """The rows of consecutive parts as one."""
        facts = [
            np.concatenate([getattr(part, name) for part in parts]) if parts else np.zeros(0, dtype)
            for name, dtype in (
                ("count", np.int64),
                ("minimum", np.int16),
                ("maximum", np.int16),
                ("non_numeric", bool),
            )
        ]
        images = [part.images for part in parts if part.images is not None]
        return cls(*facts, np.concatenate(images) if images else None)


@dataclass
class CsvBlock:
    """A block of CSV lines parsed: its pixel rows, and its lines with the pixel field emptied."""

    pixels: PixelRows
    other_fields: bytes


def parse_csv_block(text: np.ndarray, pixel_field: int, n_pixels: int) -> CsvBlock:
    """Parses complete CSV lines (uint8 bytes; the last newline may be missing) whose field number
    `pixel_field` holds the pixels. Empty lines are skipped, as CSV readers do."""
    starts, ends = (
        _line_bounds(text) if len(text) else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    )
    filled = ends > starts
    starts, ends = starts[filled], ends[filled]
    rows = len(starts)
    images = np.zeros((rows, n_pixels), np.uint8)
    count, non_numeric = np.zeros(rows, np.int64), np.zeros(rows, bool)
    minimum, maximum = np.zeros(rows, np.int16), np.zeros(rows, np.int16)
    field_starts, field_ends = np.zeros(rows, np.int64), np.zeros(rows, np.int64)
    _parse_lines(
        text,
        starts,
        ends,
        pixel_field,
        n_pixels,
        images,
        count,
        minimum,
        maximum,
        non_numeric,
        field_starts,
        field_ends,
    )
    pixels = PixelRows(count, minimum, maximum, non_numeric, images if rows else None)
    return CsvBlock(pixels, _without_fields(text, starts, ends, field_starts, field_ends).tobytes())


@numba.njit(cache=True, nogil=True)
def last_newline(text):  # pragma: no cover - compiled
    """The index of the last newline in `text` (uint8 bytes), or -1."""
    for position in range(len(text) - 1, -1, -1):
        if text[position] == _NEWLINE:
            return position
    return -1


@numba.njit(cache=True, parallel=True, nogil=True)
def _line_bounds(text):  # pragma: no cover - compiled
    """Each line's start and end (newline and a carriage return before it left out), found in
    parallel pieces.

    Helpers get slices, not the whole array with bounds: that is what lets the compiler vectorize
    them.
    """
    size = (len(text) + _PIECES - 1) // _PIECES
    newlines = np.zeros(_PIECES + 1, np.int64)
    for piece in numba.prange(_PIECES):
        newlines[piece + 1] = _count(text[piece * size : (piece + 1) * size], _NEWLINE)
    first = np.cumsum(newlines)
    unterminated = text[len(text) - 1] != _NEWLINE
    ends = np.empty(first[-1] + unterminated, np.int64)
    ends[-1] = len(text)
    for piece in numba.prange(_PIECES):
        found = ends[first[piece] : first[piece + 1]]
        _positions(text[piece * size : (piece + 1) * size], _NEWLINE, found)
        found += piece * size
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    for line in numba.prange(len(ends)):
        if ends[line] > starts[line] and text[ends[line] - 1] == _RETURN:
            ends[line] -= 1
    return starts, ends


@numba.njit(cache=True, nogil=True)
def _count(text, byte):  # pragma: no cover - compiled
    found = 0
    for value in text:
        found += value == byte
    return found


@numba.njit(cache=True, nogil=True)
def _positions(text, byte, found):  # pragma: no cover - compiled
    """Fills `found` with the positions of `byte` in `text`."""
    position = _find_either(text, 0, byte, byte)
    for index in range(len(found)):
        found[index] = position
        position = _find_either(text, position + 1, byte, byte)


@numba.njit(cache=True, parallel=True, nogil=True)
def _parse_lines(
    text,
    starts,
    ends,
    pixel_field,
    n_pixels,
    images,
    count,
    minimum,
    maximum,
    non_numeric,
    field_starts,
    field_ends,
):  # pragma: no cover - compiled
    """For each line: finds its pixel field, then fills images[row] and the row's facts from it."""
    for row in numba.prange(len(starts)):
        line = text[starts[row] : ends[row]]
        start, end = _field_span(line, pixel_field)
        field_starts[row], field_ends[row] = starts[row] + start, starts[row] + end
        if end - start >= 2 and line[start] == _QUOTE and line[end - 1] == _QUOTE:
            start, end = start + 1, end - 1
        count[row], minimum[row], maximum[row], non_numeric[row] = _parse_pixels(
            line[start:end], n_pixels, images[row]
        )


@numba.njit(cache=True, nogil=True)
def _field_span(line, field):  # pragma: no cover - compiled
    """The span of field number `field` in the line; an empty span at its end when there is none."""
    current, field_start, quoted = 0, 0, False
    position = _find_either(line, 0, _COMMA, _QUOTE)
    while position < len(line):
        if line[position] == _QUOTE:
            quoted = not quoted
        elif not quoted:
            if current == field:
                return field_start, position
            current, field_start = current + 1, position + 1
        position = _find_either(line, position + 1, _COMMA, _QUOTE)
    return (field_start, len(line)) if current == field else (len(line), len(line))


@numba.njit(cache=True, nogil=True)
def _find_either(text, position, first, second):  # pragma: no cover - compiled
    """The position of the next byte `first` or `second` in text[position:], or len(text). Runs of
    _STRIDE bytes are tested at once (a loop the compiler vectorizes), since the bytes sought are
    rare."""
    first, second = np.uint8(first), np.uint8(second)
    while position + _STRIDE <= len(text):
        run, found = text[position : position + _STRIDE], 0
        for offset in range(_STRIDE):
            found += (run[offset] == first) + (run[offset] == second)
        if found:
            break
        position += _STRIDE
    while position < len(text) and text[position] != first and text[position] != second:
        position += 1
    return position


@numba.njit(cache=True, nogil=True)
def _parse_pixels(text, n_pixels, image):  # pragma: no cover - compiled
    """Writes the tokens of `text` into image; returns their count, minimum, maximum and whether a
    byte that is neither space nor digit was seen.

    A token is a run of non-space bytes; its value is its digits read as a number, negative after
    a leading minus sign (a token of more than three digits is TOO_LONG, or -TOO_LONG), so a
    negative pixel is out of range, not a non-numeric one. Digits are tested first: they are most
    of the bytes.
    """
    tokens, value, length, low, high, bad, sign = 0, 0, 0, TOO_LONG, -TOO_LONG, False, 1
    for position in range(len(text) + 1):
        byte = text[position] if position < len(text) else _SPACE
        digit = np.int64(byte) - _ZERO
        if np.uint64(digit) < 10:
            value, length = value * 10 + digit, length + 1
        elif byte == _SPACE or byte == _TAB:
            if length:
                if length > 3:
                    value = TOO_LONG
                value *= sign
                if tokens < n_pixels:
                    image[tokens] = min(max(value, 0), 255)
                tokens, low, high = tokens + 1, min(low, value), max(high, value)
            elif sign == -1:
                bad = True
            value, length, sign = 0, 0, 1
        elif byte == _MINUS and length == 0 and sign == 1:
            sign = -1
        else:
            bad, length = True, length + 1
    return (tokens, low, high, bad) if tokens else (0, -1, -1, bad)


@numba.njit(cache=True, nogil=True)
def _without_fields(text, starts, ends, field_starts, field_ends):  # pragma: no cover - compiled
    """The lines text[starts:ends] with text[field_starts:field_ends] cut out, each ending in a
    newline."""
    kept = np.empty(
        np.sum(ends - starts) - np.sum(field_ends - field_starts) + len(starts), np.uint8
    )
    position = 0
    for line in range(len(starts)):
        for start, end in ((starts[line], field_starts[line]), (field_ends[line], ends[line])):
            kept[position : position + end - start] = text[start:end]
            position += end - start
        kept[position] = _NEWLINE
        position += 1
    return kept
