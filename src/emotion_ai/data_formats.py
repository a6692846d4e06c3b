"""The Kaggle formats: readers for FKD `training.csv`/`test.csv` and FER2013 `fer2013.csv`, and the pixel-string writer.

Reading is lenient and fast: Arrow's streaming CSV reader splits the file block by block, and
every row is parsed into per-row facts (pixel count, pixel range, labels, keypoints) that
validation then judges, so one bad row is reported by its number instead of crashing the reader.
Pixels are parsed by `pixel_parser` in one compiled pass over each block's bytes: no Python loop
over rows or pixels, no per-row strings, and never the whole file's text in memory.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as arrow_csv

from emotion_ai.faces import FER_PIXELS, FKD_PIXELS, KEYPOINT_COLUMNS
from emotion_ai.pixel_parser import PixelRows, parse_pixel_column

BLOCK_BYTES = 16 << 20
"""Bytes of CSV text read and parsed at a time: bounds the text held in memory whatever the file size."""

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"


class DataFormatError(ValueError):
    """Input data that cannot be read; the message names the file, row and column."""

    def __init__(self, source: str | Path, problem: str, *, row: int | None = None,
                 column: str | None = None) -> None:
        where = [f"file {source}"]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {problem}")
        self.source, self.row, self.column = str(source), row, column


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


def _open_zip_member(path: Path) -> BinaryIO:
    """The one CSV inside a zip archive (as Kaggle ships its downloads)."""
    archive = zipfile.ZipFile(path)
    members = [name for name in archive.namelist() if name.lower().endswith(".csv")]
    if len(members) != 1:
        raise DataFormatError(path, f"zip archive must hold exactly one .csv file (holds {members})")
    return archive.open(members[0])


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
    """Reads a CSV of `table_format` into per-row facts and, when every row is well formed, its pixels."""
    columns = read_header(path)
    check_unique_columns(path, columns)
    missing = [name for name in table_format.required_columns if name not in columns]
    if missing:
        raise DataFormatError(path, f"missing required column (found {columns})", column=missing[0])
    invalid_rows: list[arrow_csv.InvalidRow] = []
    try:
        with open_binary(path) as stream:
            pixels, others = _read_blocks(_csv_reader(stream, columns, invalid_rows), table_format)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, pa.ArrowInvalid) as error:
        raise DataFormatError(path, f"cannot be parsed as CSV ({error})") from error
    if invalid_rows:
        first = invalid_rows[0]
        raise DataFormatError(path, f"has {first.actual_columns} fields where the header names "
                                    f"{first.expected_columns} ({len(invalid_rows)} such row(s))", row=first.number)
    return Table(path, table_format, columns, _row_facts(pixels, others, table_format), pixels.images)


def _csv_reader(stream: BinaryIO, columns: list[str],
                invalid_rows: list[arrow_csv.InvalidRow]) -> arrow_csv.CSVStreamingReader:
    """Arrow's streaming reader, every column as text; rows with the wrong field count go to `invalid_rows`.

    One thread, so that Arrow numbers the rows it refuses (the pixel parser runs on every core).
    """
    def collect(row: arrow_csv.InvalidRow) -> str:
        invalid_rows.append(row)
        return "skip"

    return arrow_csv.open_csv(
        stream,
        read_options=arrow_csv.ReadOptions(column_names=columns, skip_rows=1, block_size=BLOCK_BYTES,
                                           use_threads=False),
        parse_options=arrow_csv.ParseOptions(invalid_row_handler=collect),
        convert_options=arrow_csv.ConvertOptions(column_types=dict.fromkeys(columns, pa.string())))


def _read_blocks(reader: arrow_csv.CSVStreamingReader, table_format: TableFormat) -> tuple[PixelRows, pa.Table]:
    """Parses each block's pixels as it arrives and keeps only its other (small) columns."""
    pixel_index = reader.schema.get_field_index(table_format.pixel_column)
    other_indices = [i for i in range(len(reader.schema)) if i != pixel_index]
    pixel_parts, other_parts = [], []
    for block in reader:
        pixel_parts.append(parse_pixel_column(block.column(pixel_index), table_format.n_pixels))
        other_parts.append(block.select(other_indices))
    others = pa.Table.from_batches(other_parts, reader.schema.remove(pixel_index))
    return PixelRows.concatenate(pixel_parts), others


def _row_facts(pixels: PixelRows, others: pa.Table, table_format: TableFormat) -> pd.DataFrame:
    """One row of facts per data row: file row number, pixel facts, numbers and the other columns."""
    facts = pd.DataFrame({
        "row": np.arange(2, 2 + len(pixels.count)),
        "pixel_count": pixels.count,
        "pixel_min": pixels.minimum,
        "pixel_max": pixels.maximum,
        "pixel_non_numeric": pixels.non_numeric,
    })
    text = others.to_pandas()
    for name in text.columns:
        text[name] = text[name].str.strip()
    for name in table_format.numeric_columns:
        number = pd.to_numeric(text[name], errors="coerce")
        facts[name] = number.to_numpy(dtype=float)
        facts[f"{name}_non_numeric"] = (number.isna() & (text[name] != "")).to_numpy()
    for name in text.columns.difference(table_format.required_columns, sort=False):
        facts[name] = text[name].to_numpy()
    return facts
