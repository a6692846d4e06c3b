"""The Kaggle formats: readers for FKD `training.csv`/`test.csv` and FER2013 `fer2013.csv`, and the
pixel-string writer.

Reading is lenient and fast: the file is read block by block of whole lines, and every row is
parsed into per-row facts (pixel count, pixel range, labels, keypoints) that validation then
judges, so one bad row is reported by its number instead of crashing the reader. `pixel_parser`
finds each line's pixel field and parses it in compiled passes over the block's bytes (no Python
loop over rows or pixels, no per-row strings, never the whole file's text in memory); Arrow's CSV
reader takes the rest of each line, a small fraction of the file.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as arrow_csv

from emotion_ai.data.pixel_parser import PixelRows, last_newline, parse_csv_block
from emotion_ai.faces import FER_PIXELS, FKD_PIXELS, KEYPOINT_COLUMNS

BLOCK_BYTES = 16 << 20
"""Bytes of CSV text read and parsed at a time: bounds the text held in memory whatever the file
size."""

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"


class DataFormatError(ValueError):
    """Input data that cannot be read; the message names the file, row and column."""

    def __init__(
        self, source: str | Path, problem: str, *, row: int | None = None, column: str | None = None
    ) -> None:
        where = [f"file {source}"]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {problem}")
        self.source, self.problem, self.row, self.column = str(source), problem, row, column

    def naming(self, source: str) -> DataFormatError:
        """The same error, naming `source` (the user's file) instead of the copy that was read."""
        return DataFormatError(source, self.problem, row=self.row, column=self.column)


@dataclass(frozen=True)
class TableFormat:
    """What one Kaggle CSV format holds."""

    name: str
    pixel_column: str
    n_pixels: int
    required_columns: tuple[str, ...]
    numeric_columns: tuple[str, ...]


FKD_FORMAT = TableFormat(
    name="fkd",
    pixel_column="Image",
    n_pixels=FKD_PIXELS,
    required_columns=(*KEYPOINT_COLUMNS, "Image"),
    numeric_columns=KEYPOINT_COLUMNS,
)
FKD_TEST_FORMAT = TableFormat(
    name="fkd-test",
    pixel_column="Image",
    n_pixels=FKD_PIXELS,
    required_columns=("ImageId", "Image"),
    numeric_columns=("ImageId",),
)
FER_FORMAT = TableFormat(
    name="fer2013",
    pixel_column="pixels",
    n_pixels=FER_PIXELS,
    required_columns=("emotion", "pixels"),
    numeric_columns=("emotion",),
)


@dataclass
class Table:
    """A Kaggle CSV read into per-row facts (`rows`) and, when well formed, its pixels."""

    source: Path
    format: TableFormat
    columns: list[str]
    rows: pd.DataFrame
    images: np.ndarray | None

    def without_rows(self, file_rows: list[int]) -> Table:
        """The table less the rows of these file row numbers (its facts and images alike)."""
        if not file_rows:
            return self
        kept = ~self.rows["row"].isin(file_rows).to_numpy()
        images = None if self.images is None else self.images[kept]
        return replace(self, rows=self.rows[kept].reset_index(drop=True), images=images)


def _open_zip_member(path: Path) -> BinaryIO:
    """The one CSV inside a zip archive (as Kaggle ships its downloads)."""
    archive = zipfile.ZipFile(path)
    members = [name for name in archive.namelist() if name.lower().endswith(".csv")]
    if len(members) != 1:
        raise DataFormatError(
            path, f"zip archive must hold exactly one .csv file (holds {members})"
        )
    return archive.open(members[0])


TABLE_SUFFIXES = (".csv", ".csv.gz", ".zip")
"""How the files `open_binary` reads are named: plain, gzip and zip CSVs (Kaggle ships zips)."""


def open_binary(path: Path) -> BinaryIO:
    """Opens a plain, gzip or zip CSV as a stream of its (decompressed) bytes."""
    with open(path, "rb") as probe:
        magic = probe.read(4)
    if magic[:2] == GZIP_MAGIC:
        return gzip.open(path, "rb")
    if magic == ZIP_MAGIC:
        return _open_zip_member(path)
    return open(path, "rb")


def open_text(path: Path) -> io.TextIOBase:
    """Opens a plain, gzip or zip CSV as text; a UTF-8 byte-order mark is accepted."""
    return io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", newline="")


def read_header(path: Path) -> list[str]:
    """The column names of a CSV, as written (duplicates kept)."""
    try:
        with open_text(path) as text:
            header = next(csv.reader(text), None)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise DataFormatError(path, f"cannot be read ({error})") from error
    except csv.Error as error:
        raise DataFormatError(
            path, f"its first line is no CSV header of column names ({error})", row=1
        ) from error
    if not header:
        raise DataFormatError(path, "is empty: no header line")
    return [name.strip() for name in header]


def check_unique_columns(path: Path, header: list[str]) -> None:
    """Refuses a header that names a column twice (which of the two would be meant?)."""
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise DataFormatError(path, "duplicated column in header", column=duplicated[0])


_PIXEL_TEXT = np.array([str(value).encode() for value in range(256)], dtype=object)


def pixel_string(image: np.ndarray) -> str:
    """One image as Kaggle writes it: space-separated 0..255 integers."""
    return b" ".join(_PIXEL_TEXT[image.ravel()]).decode()


def read_table(path: Path, table_format: TableFormat) -> Table:
    """Reads a CSV of `table_format` into per-row facts and, when every row is well formed, its
    pixels."""
    columns = read_header(path)
    check_unique_columns(path, columns)
    missing = [name for name in table_format.required_columns if name not in columns]
    if missing:
        raise DataFormatError(path, f"missing required column (found {columns})", column=missing[0])
    invalid_rows: list[arrow_csv.InvalidRow] = []
    try:
        with open_binary(path) as stream:
            pixels, other_fields = _read_blocks(
                stream, columns.index(table_format.pixel_column), table_format
            )
        others = _read_other_fields(other_fields, columns, invalid_rows).drop_columns(
            table_format.pixel_column
        )
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, pa.ArrowInvalid) as error:
        raise DataFormatError(path, f"cannot be parsed as CSV ({error})") from error
    if invalid_rows:
        first = invalid_rows[0]
        raise DataFormatError(
            path,
            f"has {first.actual_columns} fields where the header names {first.expected_columns} "
            f"({len(invalid_rows)} such row(s))",
            row=first.number,
        )
    return Table(
        path, table_format, columns, _row_facts(pixels, others, table_format), pixels.images
    )


def _read_blocks(
    stream: BinaryIO, pixel_field: int, table_format: TableFormat
) -> tuple[PixelRows, bytes]:
    """Parses the pixels of each block of lines as it is read; keeps the header line and the other
    fields of every line (the pixel field emptied) as a small CSV text."""
    other_fields = [stream.readline()]
    pixel_parts = []
    for text in _line_blocks(stream):
        block = parse_csv_block(text, pixel_field, table_format.n_pixels)
        pixel_parts.append(block.pixels)
        other_fields.append(block.other_fields)
    return PixelRows.concatenate(pixel_parts), b"".join(other_fields)


def _line_blocks(stream: BinaryIO) -> Iterator[np.ndarray]:
    """The stream's bytes as consecutive runs of whole lines of about BLOCK_BYTES (a longer line
    gets a run of its own). Each run is a view of one reused buffer, valid until the next is asked
    for."""
    buffer, held = np.empty(BLOCK_BYTES, np.uint8), 0
    while True:
        held = _fill(stream, buffer, held)
        at_end = held < len(buffer)
        cut = held if at_end else last_newline(buffer[:held]) + 1
        if cut == 0 and not at_end:
            buffer = np.concatenate([buffer, np.empty_like(buffer)])
            continue
        if cut:
            yield buffer[:cut]
        if at_end:
            return
        buffer[: held - cut] = buffer[cut:held]
        held -= cut


def _fill(stream: BinaryIO, buffer: np.ndarray, held: int) -> int:
    """Reads into buffer[held:] until it is full or the stream ends; returns the bytes now held."""
    while held < len(buffer):
        read = stream.readinto(buffer[held:])
        if not read:
            break
        held += read
    return held


def _read_other_fields(
    text: bytes, columns: list[str], invalid_rows: list[arrow_csv.InvalidRow]
) -> pa.Table:
    """Arrow's CSV reader on the lines without their pixels, every column as text; rows with the
    wrong field count go to `invalid_rows`, numbered as in the file (one thread, so that Arrow
    numbers them)."""

    def collect(row: arrow_csv.InvalidRow) -> str:
        invalid_rows.append(row)
        return "skip"

    return arrow_csv.read_csv(
        pa.py_buffer(text),
        read_options=arrow_csv.ReadOptions(column_names=columns, skip_rows=1, use_threads=False),
        parse_options=arrow_csv.ParseOptions(invalid_row_handler=collect),
        convert_options=arrow_csv.ConvertOptions(column_types=dict.fromkeys(columns, pa.string())),
    )


def _numbers(text: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A text column as floats (NaN where empty), and where a value is there but is not a number.

    Arrow casts a column of plain numbers at once; any other (a word, "nan") goes through pandas.
    """
    given = pc.not_equal(text, "")
    try:
        numbers = pc.cast(pc.if_else(given, text, None), pa.float64()).to_numpy()
    except pa.ArrowInvalid:
        numbers = None
    if numbers is None or np.isnan(numbers[given.to_numpy()]).any():
        numbers = pd.to_numeric(text.to_pandas(), errors="coerce").to_numpy(dtype=float)
    return numbers, np.isnan(numbers) & given.to_numpy()


def _row_facts(pixels: PixelRows, others: pa.Table, table_format: TableFormat) -> pd.DataFrame:
    """One row of facts per data row: file row number, pixel facts, numbers and the other
    columns."""
    facts = pd.DataFrame(
        {
            "row": np.arange(2, 2 + len(pixels.count)),
            "pixel_count": pixels.count,
            "pixel_min": pixels.minimum,
            "pixel_max": pixels.maximum,
            "pixel_non_numeric": pixels.non_numeric,
        }
    )
    for name in others.column_names:
        text = pc.utf8_trim_whitespace(others[name])
        if name in table_format.numeric_columns:
            facts[name], facts[f"{name}_non_numeric"] = _numbers(text)
        elif name not in table_format.required_columns:
            facts[name] = text.to_numpy()
    return facts
