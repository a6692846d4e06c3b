import gzip
import shutil

import numpy as np
import pandas as pd
import pytest

from emotion_ai.data_formats import FER_FORMAT, FKD_FORMAT, DataFormatError, parse_pixel_strings, read_table
from emotion_ai.faces import KEYPOINT_COLUMNS


def test_vectorized_parse_matches_a_plain_parse():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 16))
    texts = pd.Series([" ".join(map(str, row)) for row in images])
    parsed = parse_pixel_strings(texts, 16)
    assert parsed.images is not None
    np.testing.assert_array_equal(parsed.images, images)
    np.testing.assert_array_equal(parsed.maximum, images.max(axis=1))


@pytest.mark.parametrize("bad_row, problem", [
    ("1 2 3", "count"), ("1 2 x 4", "non_numeric"), ("1 2 256 4", "range"), ("1 2 1000 4", "range"), ("", "count"),
])
def test_a_bad_row_is_flagged_on_its_own_row(bad_row, problem):
    parsed = parse_pixel_strings(pd.Series(["9 9 9 9", bad_row, "0 1 2 3"]), 4)
    assert parsed.images is None
    flagged = {"count": parsed.count != 4, "non_numeric": parsed.non_numeric, "range": parsed.maximum > 255}[problem]
    assert flagged.tolist() == [False, True, False]


def test_reads_fkd_training_csv_with_missing_keypoints(keypoints_csv):
    table = read_table(keypoints_csv, FKD_FORMAT)
    assert table.images.shape == (60, 96 * 96)
    keypoints = table.rows[list(KEYPOINT_COLUMNS)]
    assert keypoints.isna().any(axis=1).sum() > 0, "synthetic FKD keeps rows with missing keypoints"
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
    icml.write_text("emotion, Usage, pixels\n" + "\n".join(f"{e}, {u}, {p}" for e, p, u in rows) + "\n")
    table = read_table(icml, FER_FORMAT)
    assert table.images.shape == (120, 2304)
    np.testing.assert_array_equal(table.images, read_table(fer_csv, FER_FORMAT).images)
    assert table.rows["Usage"].iloc[0] in {"Training", "PublicTest", "PrivateTest"}


def test_reads_fkd_test_csv(keypoints_csv, tmp_path):
    from emotion_ai.data_formats import FKD_TEST_FORMAT

    images = [line.rsplit(",", 1)[1] for line in keypoints_csv.read_text().splitlines()[1:4]]
    test_csv = tmp_path / "test.csv"
    test_csv.write_text("ImageId,Image\n" + "\n".join(f"{i + 1},{image}" for i, image in enumerate(images)) + "\n")
    table = read_table(test_csv, FKD_TEST_FORMAT)
    assert table.images.shape == (3, 9216) and table.rows["ImageId"].tolist() == [1, 2, 3]
