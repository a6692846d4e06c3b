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
_TAB, _NEWLINE, _RETURN, _SPACE, _QUOTE, _COMMA, _DOT, _ZERO, _NINE, _COLON = (
    9,
    10,
    13,
    32,
    34,
    44,
    46,
    48,
    57,
    58,
)
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
    """The body `{"<key>": <regular nested array of plain numbers>}` as a NumberArray; None for any
    other."""
    text = np.frombuffer(body, np.uint8)
    values, lengths = np.empty(len(body) // 2 + 1, np.float32), np.zeros(MAX_DEPTH, np.int64)
    key_start, key_end, count, depth = _parse(text, values, lengths)
    if depth < 1:
        return None
    shape = tuple(int(length) for length in lengths[:depth])
    if count != np.prod(shape):
        return None
    return NumberArray(body[key_start:key_end], values[:count].reshape(shape))


@numba.njit(cache=True, nogil=True, inline="always")
def _is_space(byte):  # pragma: no cover - compiled
    return byte == _SPACE or byte == _NEWLINE or byte == _RETURN or byte == _TAB


@numba.njit(cache=True, nogil=True, inline="always")
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
    if (
        position >= len(text)
        or text[position] != _CLOSE_OBJECT
        or _skip_space(text, position + 1) != len(text)
    ):
        return _NOT_READ
    return key_start, key_end, count, depth


@numba.njit(cache=True, nogil=True)
def _parse_array(text, position, values, lengths):  # pragma: no cover - compiled
    """Reads the array at `position`; returns the position after it, the count of numbers and its
    depth (-1 when it is ragged, holds anything but plain numbers, or is deeper than MAX_DEPTH).

    Reads by what may come next: a value (an array or a number, whose digits one tight loop
    takes), then a comma or the end of one or more arrays.
    """
    items = np.zeros(MAX_DEPTH, np.int64)
    lengths[:] = -1
    depth, leaf, count = 0, -1, 0
    while True:
        position = _skip_space(text, position)
        if position >= len(text):
            return position, 0, -1
        byte = text[position]
        if byte == _OPEN_ARRAY:
            if depth == MAX_DEPTH or depth == leaf:
                return position, 0, -1
            items[depth], depth, position = 0, depth + 1, _skip_space(text, position + 1)
            if position >= len(text) or text[position] != _CLOSE_ARRAY:
                continue  # the first value comes next; else the array is empty and ends here
        else:
            if depth == 0 or (leaf != -1 and depth != leaf):
                return position, 0, -1
            position, number = _read_number(text, position)
            if position < 0:
                return 0, 0, -1
            leaf, values[count], count, items[depth - 1] = (
                depth,
                number,
                count + 1,
                items[depth - 1] + 1,
            )
        position, depth = _close_arrays(text, position, depth, items, lengths)
        if depth <= 0:
            return position, count, leaf if depth == 0 else -1


@numba.njit(cache=True, nogil=True, inline="always")
def _close_arrays(text, position, depth, items, lengths):  # pragma: no cover - compiled
    """After a value: the position past the comma that follows it, or past the arrays it ends,
    with the depth left (0: the outermost array ended; -1: not a comma or a regular array's end)."""
    while True:
        position = _skip_space(text, position)
        if position >= len(text):
            return position, -1
        byte = text[position]
        if byte == _COMMA:
            return position + 1, depth
        if byte != _CLOSE_ARRAY:
            return position, -1
        depth -= 1
        if lengths[depth] != -1 and lengths[depth] != items[depth]:
            return position, -1
        lengths[depth], position = items[depth], position + 1
        if depth == 0:
            return position, 0
        items[depth - 1] += 1


@numba.njit(cache=True, nogil=True, inline="always")
def _read_number(text, position):  # pragma: no cover - compiled
    """The position after the plain number at `position` (digits, optionally a dot and more digits)
    and its value; position -1 when there is none there."""
    whole, digits = 0, 0
    while position < len(text) and np.uint64(np.int64(text[position]) - _ZERO) < 10:
        whole, digits, position = (
            whole * 10 + (np.int64(text[position]) - _ZERO),
            digits + 1,
            position + 1,
        )
    if digits == 0 or digits > _MAX_DIGITS:
        return -1, 0.0
    if position >= len(text) or text[position] != _DOT:
        return position, float(whole)
    fraction, scale, position = 0, 1, position + 1
    start = position
    while position < len(text) and np.uint64(np.int64(text[position]) - _ZERO) < 10:
        if scale < _MAX_SCALE:
            fraction, scale = fraction * 10 + (np.int64(text[position]) - _ZERO), scale * 10
        position += 1
    if position == start:
        return -1, 0.0
    return position, whole + fraction / scale
