"""Bad inputs: each gets a clear error naming the file, and the row and column where one applies."""

import gzip
import re
from collections.abc import Callable

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


def _fer_pixels(edit: Callable[[str], str]) -> Callable[[str], str]:
    """A FER row edit that changes only the pixel field."""

    def edited(line: str) -> str:
        label, pixels, usage = line.split(",")
        return ",".join([label, edit(pixels), usage])

    return edited


def _fkd_field(index: int, value: str) -> Callable[[str], str]:
    """An FKD row edit that sets field `index` to `value`."""

    def edited(line: str) -> str:
        fields = line.split(",")
        fields[index] = value
        return ",".join(fields)

    return edited


BAD_ROWS = {
    # name: (file, row index, edit, what the message names, what it must not name)
    "one FER pixel short": (
        "fer", 3, _fer_pixels(lambda pixels: pixels.rsplit(" ", 1)[0]),
        ["column 'pixel_count'", "2303"], [],
    ),
    "an FKD image of 9215 pixels": (
        "fkd", 2, lambda line: line.rsplit(" ", 1)[0], ["column 'pixel_count'", "9215"], [],
    ),
    "a non-numeric pixel": (
        "fer", 5, _fer_pixels(lambda pixels: "x" + pixels), ["column 'pixel_non_numeric'"], [],
    ),
    "pixel 256": (
        "fer", 2, _fer_pixels(lambda pixels: "256 " + pixels.split(" ", 1)[1]),
        ["column 'pixel_max'", "256"], [],
    ),
    "a negative pixel is out of range, not non-numeric": (
        "fer", 2, _fer_pixels(lambda pixels: "-3 " + pixels.split(" ", 1)[1]),
        ["column 'pixel_min'", "-3"], ["pixel_non_numeric"],
    ),
    "a missing label": (
        "fer", 4, lambda line: "," + line.split(",", 1)[1],
        ["expect_column_values_to_not_be_null", "column 'emotion'"], [],
    ),
    "a constant image": (
        "fer", 1, _fer_pixels(lambda pixels: " ".join(["128"] * 2304)),
        ["expect_column_pair_values_a_to_be_greater_than_b"], [],
    ),
    "a keypoint outside the image": (
        "fkd", 1, _fkd_field(0, "120.5"), ["column 'left_eye_center_x'", "120.5"], [],
    ),
    "a non-numeric keypoint": (
        "fkd", 1, _fkd_field(3, "abc"), ["column 'keypoint_non_numeric'"], [],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_ROWS, ids=list(BAD_ROWS))
def test_one_bad_row_is_named_with_its_file_row(tmp_path, fer_lines, fkd_lines, case):
    file, index, edit, named, not_named = BAD_ROWS[case]
    lines, table_format = (fer_lines, FER_FORMAT) if file == "fer" else (fkd_lines, FKD_FORMAT)
    message = _expect_failure(
        tmp_path,
        _with_row(lines, index, edit(lines[index])),
        table_format,
        DataValidationError,
        f"file row(s) [{index + 1}]",
        *named,
    )
    assert not [name for name in not_named if name in message]


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
