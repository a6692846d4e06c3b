"""Reads a JSON body of one key and a regular nested array of numbers in one compiled pass (numba).

TF Serving clients send faces as `{"instances": [[[12], [40], ...]]}`: 9,216 numbers a face.
`json.loads` builds a Python object per number; this reads them straight into a float32 array and
checks on the way that every array at one depth has the same length (no ragged arrays) and that
numbers stand only at the deepest one. Anything else (other keys, strings, signs, exponents,
`null`, escapes) is not read here: the caller falls back to `json.loads`, which names the problem.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

MAX_DEPTH = 8
_NOT_READ = (-1, -1, -1, -1)
_TAB, _NEWLINE, _RETURN, _SPACE, _QUOTE, _COMMA, _DOT, _ZERO, _NINE, _COLON = 9, 10, 13, 32, 34, 44, 46, 48, 57, 58
_OPEN_ARRAY, _BACKSLASH, _CLOSE_ARRAY, _OPEN_OBJECT, _CLOSE_OBJECT = 91, 92, 93, 123, 125
_MAX_DIGITS = 17
"""Whole digits read at most (more would overflow; such a number is far above 255 anyway)."""
_MAX_SCALE = 10**17
"""Fraction digits past the 17th are read over: they are far below float32's precision."""


@dataclass
class NumberArray:
    """The key of a one-key JSON object and its array of numbers."""

    key: bytes
    values: np.ndarray
    """float32, shaped as the JSON array."""


def read_number_array(body: bytes) -> NumberArray | None:
    """The body `{"<key>": <regular nested array of plain numbers>}` as a NumberArray; None for any other."""
    text = np.frombuffer(body, np.uint8)
    values, lengths = np.empty(len(body) // 2 + 1, np.float32), np.zeros(MAX_DEPTH, np.int64)
    key_start, key_end, count, depth = _parse(text, values, lengths)
    if depth < 1:
        return None
    shape = tuple(int(length) for length in lengths[:depth])
    if count != np.prod(shape):
        return None
    return NumberArray(body[key_start:key_end], values[:count].reshape(shape))


@numba.njit(cache=True, nogil=True)
def _is_space(byte):  # pragma: no cover - compiled
    return byte == _SPACE or byte == _NEWLINE or byte == _RETURN or byte == _TAB


@numba.njit(cache=True, nogil=True)
def _skip_space(text, position):  # pragma: no cover - compiled
    while position < len(text) and _is_space(text[position]):
        position += 1
    return position


@numba.njit(cache=True, nogil=True)
def _parse(text, values, lengths):  # pragma: no cover - compiled
    """Returns the key's span, the count of numbers written to `values` and the array's depth, whose
    lengths go to `lengths`; _NOT_READ when the body is not of that form."""
    position = _skip_space(text, 0)
    if position >= len(text) or text[position] != _OPEN_OBJECT:
        return _NOT_READ
    position = _skip_space(text, position + 1)
    if position >= len(text) or text[position] != _QUOTE:
        return _NOT_READ
    key_start = position = position + 1
    while position < len(text) and text[position] != _QUOTE:
        if text[position] == _BACKSLASH:
            return _NOT_READ
        position += 1
    key_end = position
    position = _skip_space(text, position + 1)
    if position >= len(text) or text[position] != _COLON:
        return _NOT_READ
    position, count, depth = _parse_array(text, _skip_space(text, position + 1), values, lengths)
    if depth < 0:
        return _NOT_READ
    position = _skip_space(text, position)
    if position >= len(text) or text[position] != _CLOSE_OBJECT or _skip_space(text, position + 1) != len(text):
        return _NOT_READ
    return key_start, key_end, count, depth


@numba.njit(cache=True, nogil=True)
def _parse_array(text, position, values, lengths):  # pragma: no cover - compiled
    """Reads the array at `position`; returns the position after it, the count of numbers and its
    depth (-1 when it is ragged, holds anything but plain numbers, or is deeper than MAX_DEPTH).

    One loop over the bytes: digits (most of them) add to the number being read; any other byte
    first ends that number, then is taken as structure.
    """
    if position >= len(text) or text[position] != _OPEN_ARRAY:
        return position, 0, -1
    items = np.zeros(MAX_DEPTH, np.int64)
    lengths[:] = -1
    depth, leaf, count, expect_item = 0, -1, 0, True
    reading, whole, fraction, scale, digits, dot = False, 0, 0, 1, 0, -1
    for position in range(position, len(text)):
        byte = text[position]
        digit = np.int64(byte) - _ZERO
        if np.uint64(digit) < 10:
            if not reading:
                if not expect_item or (leaf != -1 and depth != leaf):
                    break
                leaf, reading, whole, fraction, scale, digits, dot = depth, True, 0, 0, 1, 0, -1
            if dot < 0:
                whole, digits = whole * 10 + digit, digits + 1
            elif scale < _MAX_SCALE:
                fraction, scale = fraction * 10 + digit, scale * 10
            continue
        if byte == _DOT and reading and dot < 0:
            dot = position
            continue
        if reading:
            if digits > _MAX_DIGITS or dot == position - 1:
                break
            values[count] = whole + fraction / scale if dot >= 0 else whole
            count, items[depth - 1], expect_item, reading = count + 1, items[depth - 1] + 1, False, False
        if byte == _OPEN_ARRAY:
            if not expect_item or depth == MAX_DEPTH or depth == leaf:
                break
            items[depth], depth = 0, depth + 1
        elif byte == _CLOSE_ARRAY:
            if expect_item and items[depth - 1] > 0:
                break
            depth -= 1
            if lengths[depth] != -1 and lengths[depth] != items[depth]:
                break
            lengths[depth] = items[depth]
            if depth == 0:
                return position + 1, count, leaf
            items[depth - 1] += 1
            expect_item = False
        elif byte == _COMMA:
            if expect_item:
                break
            expect_item = True
        elif not _is_space(byte):
            break
    return position, 0, -1
