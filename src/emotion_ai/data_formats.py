"""The Kaggle formats: readers for FKD `training.csv`/`test.csv` and FER2013 `fer2013.csv`, and the pixel-string writer.

Reading is lenient and vectorized: every row is parsed into per-row facts (pixel count,
pixel range, labels, keypoints) that validation then judges, so one bad row is reported by
its number instead of crashing the reader. Pixels are parsed in chunks of rows with numpy
byte arithmetic: no Python loop over rows or pixels.
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

from emotion_ai.faces import FER_PIXELS, FKD_PIXELS, KEYPOINT_COLUMNS

CHUNK_PIXELS = 2_000_000
"""Pixels parsed at a time: bounds the parser's temporaries (about 10 bytes a pixel) whatever the row size."""
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
_SPACE, _TAB, _ZERO = 32, 9, 48
_TOO_LONG = 1000
"""Value given to a token of more than three digits: always out of the 0..255 range."""


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
class PixelRows:
    """Per-row facts about a column of space-separated pixel strings."""

    count: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    non_numeric: np.ndarray
    images: np.ndarray | None
    """(rows, n_pixels) uint8, or None when any row is malformed."""


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


def open_text(path: Path) -> io.TextIOBase:
    """Opens a plain, gzip or zip CSV as text; a UTF-8 byte-order mark is accepted."""
    with open(path, "rb") as probe:
        magic = probe.read(4)
    if magic[:2] == GZIP_MAGIC:
        raw = gzip.open(path, "rb")
    elif magic == ZIP_MAGIC:
        raw = _open_zip_member(path)
    else:
        raw = open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


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


_PIXEL_TEXT = np.array([str(value).encode() for value in range(256)], dtype=object)


def pixel_string(image: np.ndarray) -> str:
    """One image as Kaggle writes it: space-separated 0..255 integers."""
    return b" ".join(_PIXEL_TEXT[image.ravel()]).decode()


def parse_pixel_strings(texts: pd.Series, n_pixels: int) -> PixelRows:
    """Parses space-separated 0..255 pixel strings with numpy byte arithmetic.

    The rows are joined with single spaces into one byte buffer. A token's value is read at
    its last byte: d[e] + 10*d[e-1] + 100*d[e-2] (spaces count as 0 digits), and per-row
    counts come from searching the row boundaries in the sorted token ends, so the cost is
    a few vectorized passes over the bytes.
    """
    strings = texts.astype(object).where(texts.notna(), "").map(str.strip)
    lengths = strings.str.len().to_numpy(dtype=np.int64)
    text = "  " + " ".join(strings) + " "
    data = np.frombuffer(text.encode("ascii", errors="replace"), dtype=np.uint8)
    is_space = (data == _SPACE) | (data == _TAB)
    digits = data - np.uint8(_ZERO)
    is_digit = digits < 10
    digits *= is_digit
    bad_char = ~(is_space | is_digit)
    ends = np.flatnonzero(~is_space[:-1] & is_space[1:])
    units, tens, hundreds = (digits[ends - k].astype(np.int16) for k in range(3))
    before_end = is_digit[ends - 1]
    values = units + 10 * tens + 100 * hundreds * before_end
    too_long = before_end & is_digit[ends - 2] & is_digit[ends - 3]
    values[too_long] = _TOO_LONG

    row_ends = 2 + np.cumsum(lengths + 1) - 1
    row_starts = row_ends - lengths
    count = _per_row_count(ends, row_starts, row_ends)
    non_numeric = _per_row_count(np.flatnonzero(bad_char), row_starts, row_ends) > 0
    minimum, maximum = _per_row_range(values, count)
    well_formed = (count == n_pixels).all() and not non_numeric.any() and (maximum <= 255).all()
    images = values.reshape(len(lengths), n_pixels).astype(np.uint8) if well_formed else None
    return PixelRows(count, minimum, maximum, non_numeric, images)


def _per_row_count(positions: np.ndarray, row_starts: np.ndarray, row_ends: np.ndarray) -> np.ndarray:
    """How many of the sorted byte `positions` fall within each row's range [start, end)."""
    return np.searchsorted(positions, row_ends) - np.searchsorted(positions, row_starts)


def _per_row_range(values: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row minimum and maximum of token values (-1 for rows without tokens)."""
    minimum = np.full(len(count), -1, dtype=np.int16)
    maximum = np.full(len(count), -1, dtype=np.int16)
    has_tokens = count > 0
    first_token = (np.cumsum(count) - count)[has_tokens]
    if len(first_token):
        minimum[has_tokens] = np.minimum.reduceat(values, first_token)
        maximum[has_tokens] = np.maximum.reduceat(values, first_token)
    return minimum, maximum


def read_table(path: Path, table_format: TableFormat) -> Table:
    """Reads a CSV of `table_format` into per-row facts, chunk by chunk."""
    columns = read_header(path)
    missing = [name for name in table_format.required_columns if name not in columns]
    if missing:
        raise DataFormatError(path, f"missing required column (found {columns})", column=missing[0])
    frames: list[pd.DataFrame] = []
    images: list[np.ndarray] | None = []
    try:
        with open_text(path) as text:
            reader = pd.read_csv(text, chunksize=max(1, CHUNK_PIXELS // table_format.n_pixels), dtype=str,
                                 keep_default_na=False,
                                 skipinitialspace=True)
            for chunk in reader:
                facts, chunk_images = _chunk_facts(chunk, table_format, start_row=_next_row(frames))
                frames.append(facts)
                images = None if images is None or chunk_images is None else [*images, chunk_images]
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, UnicodeDecodeError,
            pd.errors.ParserError) as error:
        raise DataFormatError(path, f"cannot be parsed as CSV ({error})") from error
    rows = pd.concat(frames, ignore_index=True) if frames else _empty_facts(table_format)
    stacked = np.concatenate(images) if images else None
    return Table(path, table_format, columns, rows, stacked)


def _next_row(frames: list[pd.DataFrame]) -> int:
    """The file row number of the next chunk's first data row (the header is row 1)."""
    return 2 + sum(len(frame) for frame in frames)


def _empty_facts(table_format: TableFormat) -> pd.DataFrame:
    columns = ["row", "pixel_count", "pixel_min", "pixel_max", "pixel_non_numeric",
               *table_format.numeric_columns]
    return pd.DataFrame({name: pd.Series(dtype=float) for name in columns})


def _chunk_facts(chunk: pd.DataFrame, table_format: TableFormat,
                 start_row: int) -> tuple[pd.DataFrame, np.ndarray | None]:
    pixels = parse_pixel_strings(chunk[table_format.pixel_column], table_format.n_pixels)
    facts = pd.DataFrame({
        "row": np.arange(start_row, start_row + len(chunk)),
        "pixel_count": pixels.count,
        "pixel_min": pixels.minimum,
        "pixel_max": pixels.maximum,
        "pixel_non_numeric": pixels.non_numeric,
    })
    for name in table_format.numeric_columns:
        text = chunk[name].str.strip()
        number = pd.to_numeric(text, errors="coerce")
        facts[name] = number.to_numpy(dtype=float)
        facts[f"{name}_non_numeric"] = (number.isna() & (text != "")).to_numpy()
    extra = [name for name in chunk.columns if name not in table_format.required_columns]
    for name in extra:
        facts[name] = chunk[name].to_numpy()
    return facts, pixels.images
