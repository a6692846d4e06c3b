import gzip
import shutil

import numpy as np
import pytest

from emotion_ai.data.formats import FER_FORMAT, FKD_FORMAT, DataFormatError, read_table
from emotion_ai.data.pixel_parser import CsvBlock, parse_csv_block
from emotion_ai.faces import ALWAYS_LABELLED, KEYPOINT_COLUMNS


def _writable(text: str) -> np.ndarray:
    """The text's bytes in a writable array, as `read_table` passes them: a read-only one is
    another type to numba, compiled again (20 s) instead of loaded from its cache."""
    return np.frombuffer(text.encode(), np.uint8).copy()


def _parse(text: str, pixel_field: int, n_pixels: int) -> CsvBlock:
    return parse_csv_block(_writable(text), pixel_field, n_pixels)


def test_compiled_parse_matches_a_plain_parse():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 16))
    texts = [" ".join(map(str, row)) for row in images]
    texts[3] = "  " + texts[3].replace(" ", " \t ") + " "
    parsed = _parse(
        "".join(f"{label},{text},Training\n" for label, text in enumerate(texts)), 1, 16
    ).pixels
    assert parsed.images is not None
    np.testing.assert_array_equal(parsed.images, images)
    np.testing.assert_array_equal(parsed.minimum, images.min(axis=1))
    np.testing.assert_array_equal(parsed.maximum, images.max(axis=1))


def test_lines_keep_their_other_fields_for_arrow():
    block = _parse('3,"1 2",Training\r\n\n4,5 6,"Public,Test"\n5,7 8', 1, 2)
    assert block.pixels.images.tolist() == [[1, 2], [5, 6], [7, 8]]
    assert block.other_fields == b'3,,Training\n4,,"Public,Test"\n5,\n'


@pytest.mark.parametrize("line, count", [("7", 0), ("7,1 2,x,1 2", 2), ('7,"1,2"', 1)])
def test_a_line_without_its_pixel_field_has_no_pixels(line, count):
    assert _parse(line, 1, 2).pixels.count.tolist() == [count]


@pytest.mark.parametrize(
    "bad_row, problem",
    [
        ("1 2 3", "count"),
        ("1 2 x 4", "non_numeric"),
        ("1 2 256 4", "range"),
        ("1 2 1000 4", "range"),
        ("1 2 99999999999999999999 4", "range"),
        ("1 2 -3 4", "range"),
        ("1 2 3- 4", "non_numeric"),
        ("1 2 - 4", "non_numeric"),
        ("1 2 3 4 5", "count"),
        ("", "count"),
    ],
)
def test_a_bad_row_is_flagged_on_its_own_row(bad_row, problem):
    parsed = _parse(f"0,9 9 9 9\n1,{bad_row}\n2,0 1 2 3\n", 1, 4).pixels
    assert parsed.images[[0, 2]].tolist() == [[9, 9, 9, 9], [0, 1, 2, 3]], "the good rows stay"
    flagged = {
        "count": parsed.count != 4,
        "non_numeric": parsed.non_numeric,
        "range": (parsed.maximum > 255) | (parsed.minimum < 0),
    }[problem]
    assert flagged.tolist() == [False, True, False]


def test_a_row_with_too_many_fields_names_its_row(fer_csv, tmp_path):
    lines = fer_csv.read_text().splitlines()
    lines[3] += ",extra"
    path = tmp_path / "extra.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataFormatError, match=r"extra.csv, row 4: has 4 fields where the header names 3"
    ):
        read_table(path, FER_FORMAT)


def test_many_blocks_keep_rows_in_order(fer_csv, monkeypatch):
    import emotion_ai.data.formats as data_formats

    whole = read_table(fer_csv, FER_FORMAT)
    monkeypatch.setattr(data_formats, "BLOCK_BYTES", 20_000)
    in_blocks = read_table(fer_csv, FER_FORMAT)
    np.testing.assert_array_equal(in_blocks.images, whole.images)
    assert in_blocks.rows["row"].tolist() == whole.rows["row"].tolist() == list(range(2, 122))
    assert in_blocks.rows["emotion"].tolist() == whole.rows["emotion"].tolist()


def test_a_line_longer_than_a_block_is_read_whole(fer_csv, monkeypatch):
    import emotion_ai.data.formats as data_formats

    whole = read_table(fer_csv, FER_FORMAT)
    monkeypatch.setattr(data_formats, "BLOCK_BYTES", 1000)
    np.testing.assert_array_equal(read_table(fer_csv, FER_FORMAT).images, whole.images)


def test_reads_fkd_training_csv_with_missing_keypoints(keypoints_csv):
    table = read_table(keypoints_csv, FKD_FORMAT)
    assert table.images.shape == (60, 96 * 96)
    keypoints = table.rows[list(KEYPOINT_COLUMNS)]
    incomplete = keypoints[keypoints.isna().any(axis=1)]
    assert len(incomplete) > 0, "synthetic FKD keeps rows with missing keypoints"
    assert set(incomplete.dropna(axis=1).columns) == {
        f"{name}_{axis}" for name in ALWAYS_LABELLED for axis in "xy"
    }, "as in Kaggle, incomplete rows hold the eye centres, nose tip and lower lip"
    assert table.rows["row"].tolist()[:2] == [2, 3]


def test_reads_gzip_and_a_utf8_byte_order_mark(fer_csv, tmp_path):
    with_bom = tmp_path / "bom.csv"
    with_bom.write_bytes(b"\xef\xbb\xbf" + fer_csv.read_bytes())
    zipped = tmp_path / "fer.csv.gz"
    with open(fer_csv, "rb") as source, gzip.open(zipped, "wb") as target:
        shutil.copyfileobj(source, target)
    for path in (with_bom, zipped):
        table = read_table(path, FER_FORMAT)
        assert table.images.shape == (120, 48 * 48)
        assert set(table.rows["emotion"].unique()) <= set(range(7))


def test_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "no_pixels.csv"
    path.write_text("emotion,Usage\n3,Training\n")
    with pytest.raises(DataFormatError, match=r"no_pixels.csv.*column 'pixels'"):
        read_table(path, FER_FORMAT)


def test_reads_a_kaggle_zip_download(fer_csv, tmp_path):
    import zipfile

    archive = tmp_path / "challenges-in-representation-learning.zip"
    with zipfile.ZipFile(archive, "w") as packed:
        packed.write(fer_csv, "fer2013/fer2013.csv")
    assert read_table(archive, FER_FORMAT).images.shape == (120, 2304)


def test_zip_with_two_csvs_is_refused(fer_csv, tmp_path):
    import zipfile

    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as packed:
        packed.write(fer_csv, "a.csv")
        packed.write(fer_csv, "b.csv")
    with pytest.raises(DataFormatError, match="exactly one .csv"):
        read_table(archive, FER_FORMAT)


def test_reads_the_icml_variant_with_spaces_in_the_header(fer_csv, tmp_path):
    lines = fer_csv.read_text().splitlines()
    icml = tmp_path / "icml_face_data.csv"
    rows = [line.split(",") for line in lines[1:]]
    icml.write_text(
        "emotion, Usage, pixels\n" + "\n".join(f"{e}, {u}, {p}" for e, p, u in rows) + "\n"
    )
    table = read_table(icml, FER_FORMAT)
    assert table.images.shape == (120, 2304)
    np.testing.assert_array_equal(table.images, read_table(fer_csv, FER_FORMAT).images)
    assert table.rows["Usage"].iloc[0] in {"Training", "PublicTest", "PrivateTest"}


def test_reads_fkd_test_csv(keypoints_csv, tmp_path):
    from emotion_ai.data.formats import FKD_TEST_FORMAT

    images = [line.rsplit(",", 1)[1] for line in keypoints_csv.read_text().splitlines()[1:4]]
    test_csv = tmp_path / "test.csv"
    test_csv.write_text(
        "ImageId,Image\n" + "\n".join(f"{i + 1},{image}" for i, image in enumerate(images)) + "\n"
    )
    table = read_table(test_csv, FKD_TEST_FORMAT)
    assert table.images.shape == (3, 9216) and table.rows["ImageId"].tolist() == [1, 2, 3]


@pytest.mark.parametrize("label", ["nan", "three", "3.0.0"])
def test_a_label_that_is_not_a_number_is_flagged_on_its_row(fer_csv, tmp_path, label):
    lines = fer_csv.read_text().splitlines()
    lines[2] = label + lines[2][lines[2].index(",") :]
    path = tmp_path / "label.csv"
    path.write_text("\n".join(lines) + "\n")
    rows = read_table(path, FER_FORMAT).rows
    assert rows.loc[rows["emotion_non_numeric"], "row"].tolist() == [3]
    assert rows["emotion"].isna().sum() == 1
