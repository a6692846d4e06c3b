import json

import numpy as np
import pytest

from emotion_ai.serving.json_arrays import MAX_DEPTH, read_number_array


@pytest.mark.parametrize(
    "array",
    [
        [1, 2, 3],
        [[0.5, 2], [3, 4.25]],
        [[[1]], [[2]]],
        [[0.1234567890123456789, 0.00392156862745098]],
        [[255] * 7] * 3,
    ],
)
def test_reads_regular_arrays_of_plain_numbers_like_json(array):
    parsed = read_number_array(json.dumps({"instances": array}).encode())
    assert parsed is not None and parsed.key == b"instances"
    np.testing.assert_allclose(parsed.values, np.asarray(array, np.float32), rtol=1e-7)


def test_whitespace_anywhere_between_tokens():
    parsed = read_number_array(b' \n{ "inputs"\t:\r\n[ [ 1 ,2 ] , [3, 4 ]\n] }\n')
    assert parsed.key == b"inputs" and parsed.values.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": [[1], [2, 3]]}',  # ragged
        b'{"a": [[1, 2], [3]]}',
        b'{"a": [[1], []]}',
        b'{"a": [[1], 2]}',  # numbers at two depths
        b'{"a": [1, [2]]}',
        b'{"a": [1, 2,]}',
        b'{"a": [,1]}',
        b'{"a": [1 2]}',  # commas
        b'{"a": [-1]}',
        b'{"a": [1e5]}',
        b'{"a": [1.]}',
        b'{"a": [NaN]}',
        b'{"a": ["1"]}',
        b'{"a": [null]}',
        b'{"a": []}',
        b'{"a": [[]]}',
        b'{"a": 1}',
        b"[1]",
        b'{"a": [1]',
        b'{"a": [1]} x',
        b'{"a": [1], "b": 2}',
        b'{"a\\"": [1]}',
        b'{"a": [1]]}',
        b'{"a": [12345678901234567890]}',
        b"",
        b'{"a": ' + b"[" * (MAX_DEPTH + 1) + b"1" + b"]" * (MAX_DEPTH + 1) + b"}",
    ],
)
def test_anything_else_is_left_to_json(body):
    assert read_number_array(body) is None
