"""Bad inputs: each gets a clear error naming the file, and the row and column where one applies."""

import gzip
import re

import pytest

from emotion_ai.data.formats import FER_FORMAT, FKD_FORMAT, DataFormatError
from emotion_ai.data.validation import DataValidationError, validate_file
from emotion_ai.settings import ValidationSettings


@pytest.fixture(scope="module")
def fer_lines(fer_csv) -> list[str]:
    return fer_csv.read_text().splitlines()[:21]


@pytest.fixture(scope="module")
def fkd_lines(keypoints_csv) -> list[str]:
    return keypoints_csv.read_text().splitlines()[:11]


def _with_row(lines: list[str], index: int, new_row: str) -> str:
    changed = list(lines)
    changed[index] = new_row
    return "\n".join(changed) + "\n"


def _expect_failure(
    tmp_path, content, table_format, error, *patterns, settings=ValidationSettings()
):
    path = tmp_path / "bad.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(error) as caught:
        validate_file(path, table_format, settings)
    message = str(caught.value)
    assert "bad.csv" in message
    for pattern in patterns:
        assert pattern in message, f"{pattern!r} not in {message!r}"
    return message


def test_good_files_pass(fer_csv, keypoints_csv):
    table, reports = validate_file(fer_csv, FER_FORMAT)
    assert all(report.success for report in reports) and len(reports) == 3
    table, reports = validate_file(keypoints_csv, FKD_FORMAT)
    assert table.images.shape[0] == 60


def test_empty_file(tmp_path):
    _expect_failure(tmp_path, "", FER_FORMAT, DataFormatError, "is empty")


def test_header_only(tmp_path, fer_lines):
    message = _expect_failure(
        tmp_path,
        fer_lines[0] + "\n",
        FER_FORMAT,
        DataValidationError,
        "expect_table_row_count_to_be_between",
    )
    assert "duplicate_image" not in message, "no rows are no duplicates"


def test_wrong_delimiter(tmp_path, fer_lines):
    content = "\n".join(line.replace(",", ";") for line in fer_lines)
    _expect_failure(
        tmp_path, content, FER_FORMAT, DataValidationError, "expect_column_to_exist", "'pixels'"
    )


def test_missing_image_column(tmp_path, fkd_lines):
    content = "\n".join(line.rsplit(",", 1)[0] for line in fkd_lines)
    _expect_failure(tmp_path, content, FKD_FORMAT, DataValidationError, "column 'Image'")


def test_duplicate_column(tmp_path, fer_lines):
    content = "\n".join([fer_lines[0] + ",emotion", *(line + ",3" for line in fer_lines[1:])])
    _expect_failure(
        tmp_path, content, FER_FORMAT, DataFormatError, "duplicated column", "'emotion'"
    )


def test_one_pixel_short(tmp_path, fer_lines):
    label, pixels, usage = fer_lines[3].split(",")
    short = ",".join([label, pixels.rsplit(" ", 1)[0], usage])
    _expect_failure(
        tmp_path,
        _with_row(fer_lines, 3, short),
        FER_FORMAT,
        DataValidationError,
        "column 'pixel_count'",
        "file row(s) [4]",
        "2303",
    )


def test_fkd_image_with_9215_pixels(tmp_path, fkd_lines):
    short = fkd_lines[2].rsplit(" ", 1)[0]
    _expect_failure(
        tmp_path,
        _with_row(fkd_lines, 2, short),
        FKD_FORMAT,
        DataValidationError,
        "column 'pixel_count'",
        "file row(s) [3]",
        "9215",
    )


def test_non_numeric_pixel(tmp_path, fer_lines):
    label, pixels, usage = fer_lines[5].split(",")
    bad = ",".join([label, "x" + pixels, usage])
    _expect_failure(
        tmp_path,
        _with_row(fer_lines, 5, bad),
        FER_FORMAT,
        DataValidationError,
        "column 'pixel_non_numeric'",
        "file row(s) [6]",
    )


def test_pixel_256(tmp_path, fer_lines):
    label, pixels, usage = fer_lines[2].split(",")
    bad = ",".join([label, "256 " + pixels.split(" ", 1)[1], usage])
    _expect_failure(
        tmp_path,
        _with_row(fer_lines, 2, bad),
        FER_FORMAT,
        DataValidationError,
        "column 'pixel_max'",
        "file row(s) [3]",
        "256",
    )


def test_a_negative_pixel_is_out_of_range_not_non_numeric(tmp_path, fer_lines):
    label, pixels, usage = fer_lines[2].split(",")
    bad = ",".join([label, "-3 " + pixels.split(" ", 1)[1], usage])
    message = _expect_failure(
        tmp_path,
        _with_row(fer_lines, 2, bad),
        FER_FORMAT,
        DataValidationError,
        "column 'pixel_min'",
        "file row(s) [3]",
        "-3",
    )
    assert "pixel_non_numeric" not in message


def test_label_7(tmp_path, fer_lines):
    """One bad row in 20 is more than the share that may be set aside: the run fails closed, and
    says how many rows it could have set aside."""
    bad = "7," + fer_lines[4].split(",", 1)[1]
    _expect_failure(
        tmp_path,
        _with_row(fer_lines, 4, bad),
        FER_FORMAT,
        DataValidationError,
        "column 'emotion'",
        "file row(s) [5]",
        "--max-bad-row-share",
        settings=ValidationSettings(max_bad_row_share=0.01),
    )


def test_missing_label(tmp_path, fer_lines):
    bad = "," + fer_lines[4].split(",", 1)[1]
    _expect_failure(
        tmp_path,
        _with_row(fer_lines, 4, bad),
        FER_FORMAT,
        DataValidationError,
        "expect_column_values_to_not_be_null",
        "column 'emotion'",
        "file row(s) [5]",
    )


def test_constant_image(tmp_path, fer_lines):
    label, pixels, usage = fer_lines[1].split(",")
    bad = ",".join([label, " ".join(["128"] * 2304), usage])
    _expect_failure(
        tmp_path,
        _with_row(fer_lines, 1, bad),
        FER_FORMAT,
        DataValidationError,
        "expect_column_pair_values_a_to_be_greater_than_b",
        "file row(s) [2]",
    )


def test_keypoint_outside_the_image(tmp_path, fkd_lines):
    fields = fkd_lines[1].split(",")
    fields[0] = "120.5"
    _expect_failure(
        tmp_path,
        _with_row(fkd_lines, 1, ",".join(fields)),
        FKD_FORMAT,
        DataValidationError,
        "column 'left_eye_center_x'",
        "file row(s) [2]",
        "120.5",
    )


def test_non_numeric_keypoint(tmp_path, fkd_lines):
    fields = fkd_lines[1].split(",")
    fields[3] = "abc"
    _expect_failure(
        tmp_path,
        _with_row(fkd_lines, 1, ",".join(fields)),
        FKD_FORMAT,
        DataValidationError,
        "column 'keypoint_non_numeric'",
        "file row(s) [2]",
    )


def test_truncated_gzip(tmp_path, fer_lines):
    packed = gzip.compress(("\n".join(fer_lines) + "\n").encode())
    _expect_failure(tmp_path, packed[: len(packed) // 2], FER_FORMAT, DataFormatError, "cannot be")


def test_binary_garbage(tmp_path):
    _expect_failure(
        tmp_path, bytes(range(256)) * 4, FER_FORMAT, (DataFormatError, DataValidationError)
    )


def test_too_few_rows_of_a_class_names_the_class(tmp_path, fer_lines):
    _expect_failure(
        tmp_path,
        "\n".join(fer_lines) + "\n",
        FER_FORMAT,
        DataValidationError,
        "fer2013-class-counts",
        "column 'rows'",
        "'Angry'",
        settings=ValidationSettings(min_rows_per_class=50),
    )


def test_too_many_duplicate_images(tmp_path, fer_lines):
    content = "\n".join([*fer_lines, *fer_lines[1:6]]) + "\n"
    _expect_failure(
        tmp_path,
        content,
        FER_FORMAT,
        DataValidationError,
        "expect_column_mean_to_be_between on column 'duplicate_image'",
        settings=ValidationSettings(max_duplicate_rate=0.1),
    )


def test_data_docs_are_built_for_every_suite(tmp_path, fer_csv):
    from emotion_ai.data.validation import SuiteRunner

    runner = SuiteRunner(tmp_path / "gx")
    validate_file(fer_csv, FER_FORMAT, runner=runner)
    pages = {page.name for page in runner.docs_dir.rglob("*.html")}
    assert "index.html" in pages
    assert {"fer2013-schema.html", "fer2013-content.html", "fer2013-class-counts.html"} <= pages


def test_a_semicolon_file_counts_its_failed_expectations_truly(tmp_path, fer_lines):
    path = tmp_path / "semicolons.csv"
    path.write_text("\n".join(line.replace(",", ";") for line in fer_lines) + "\n")
    with pytest.raises(DataValidationError) as caught:
        validate_file(path, FER_FORMAT)
    failed, evaluated = map(int, re.search(r"failed (\d+) of (\d+)", str(caught.value)).groups())
    assert 0 < failed <= evaluated


def test_a_huge_single_line_file_gets_a_clear_error_not_a_csv_exception(tmp_path):
    path = tmp_path / "one-line.csv"
    path.write_text("1" * 300_000)
    with pytest.raises(DataFormatError, match="first line is no CSV header") as caught:
        validate_file(path, FER_FORMAT)
    assert "one-line.csv" in str(caught.value) and "row 1" in str(caught.value)


def test_errors_name_the_users_file_not_the_pipelines_copy(tmp_path, fer_lines):
    copy = tmp_path / "kfp" / "run-1" / "ingest" / "fer_raw" / "data.csv"
    copy.parent.mkdir(parents=True)
    source = "s3://datasets/fer2013.csv"
    copy.write_text(_with_row(fer_lines, 3, fer_lines[3].replace(fer_lines[3][0], "9", 1)))
    with pytest.raises(DataValidationError) as content:
        validate_file(copy, FER_FORMAT, source=source)
    copy.write_bytes(b"\x00\xff not a csv")
    with pytest.raises(DataFormatError) as unreadable:
        validate_file(copy, FER_FORMAT, source=source)
    for caught in (content, unreadable):
        assert source in str(caught.value) and "kfp" not in str(caught.value)


SET_ASIDE = ValidationSettings(max_bad_row_share=0.2)
"""One bad row in 20 (5%) is within this share."""


def test_bad_rows_within_the_share_are_set_aside_and_named(tmp_path, fer_lines):
    label, pixels, usage = fer_lines[1].split(",")
    constant = ",".join([label, " ".join(["128"] * 2304), usage])
    short = ",".join(fer_lines[3].split(",")[0:1] + ["1 2 3"] + fer_lines[3].split(",")[2:])
    lines = _with_row(_with_row(fer_lines, 1, constant).splitlines(), 3, short).splitlines()
    lines = _with_row(lines, 4, "7," + fer_lines[4].split(",", 1)[1]).splitlines()
    path = tmp_path / "three-bad.csv"
    path.write_text("\n".join(lines) + "\n")
    table, reports = validate_file(path, FER_FORMAT, SET_ASIDE)
    (content,) = [report for report in reports if report.suite == "fer2013-content"]
    assert content.success and sorted(content.set_aside) == [2, 4, 5]
    assert "pixel_min" in content.set_aside[2][0] and "pixel_count" in content.set_aside[4][0]
    assert "'emotion'" in content.set_aside[5][0]
    assert len(table.rows) == 17 and table.images.shape == (17, 2304)
    kept_first = [int(value) for value in fer_lines[2].split(",")[1].split()]
    assert table.images[0].tolist() == kept_first, "the images stay with their rows"


def test_a_keypoint_outside_the_face_sets_its_row_aside(tmp_path, fkd_lines):
    fields = fkd_lines[1].split(",")
    fields[0] = "120.5"
    path = tmp_path / "keypoints.csv"
    path.write_text(_with_row(fkd_lines, 1, ",".join(fields)))
    table, reports = validate_file(path, FKD_FORMAT, SET_ASIDE)
    assert list(reports[1].set_aside) == [2] and len(table.rows) == 9
