"""Data validation with Great Expectations 1.x: a schema suite on the header, a content suite on the
rows.

Rows that are bad one by one (a constant image, a label out of range, a wrong pixel count, a
keypoint outside the face) are set aside while each row expectation finds at most
`ValidationSettings.max_bad_row_share` of the rows against it (Great Expectations' `mostly`); the
report names them by file row and reason. Anything else fails closed: a failed expectation raises
DataValidationError naming the file, the expectation, the column and the first offending file rows.
"""

from __future__ import annotations

import csv
import io
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_ai.data.datasets import duplicate_groups
from emotion_ai.data.formats import (
    FER_FORMAT,
    FKD_FORMAT,
    DataFormatError,
    Table,
    TableFormat,
    check_unique_columns,
    read_header,
    read_table,
)
from emotion_ai.faces import (
    EMOTIONS,
    FACE_SIZE,
    FER_CODE_TO_CLASS,
    FER_CODES,
    KEYPOINT_COLUMNS,
)
from emotion_ai.settings import ValidationSettings

EXAMPLE_ROWS = 5
REJECTED_ROWS_HEADER = ("row", "reasons")


@dataclass
class ValidationReport:
    """What one suite run found: counts, the failures in words, and every expectation's outcome."""

    source: str
    suite: str
    evaluated: int
    passed: int
    failures: list[str] = field(default_factory=list)
    outcomes: list[tuple[bool, str]] = field(default_factory=list)
    """(passed, the expectation and what it observed) for each expectation, in suite order."""
    set_aside: dict[int, list[str]] = field(default_factory=dict)
    """File row -> the row expectations it failed, for rows left out of a suite that passed."""

    @property
    def success(self) -> bool:
        return not self.failures


class DataValidationError(ValueError):
    """Data that failed its expectations; the message lists every failure."""

    def __init__(self, report: ValidationReport) -> None:
        listed = "\n  - ".join(report.failures)
        super().__init__(
            f"file {report.source} failed {report.evaluated - report.passed} of {report.evaluated} "
            f"expectations of suite {report.suite!r}:\n  - {listed}"
        )
        self.report = report


def _gx():
    """Imports Great Expectations quietly (it is slow to import and chatty: its import logs over
    a hundred "Skipping registering function" lines at INFO, which a step's INFO log would keep)."""
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx

    return gx


def schema_expectations(table_format: TableFormat) -> list:
    gx = _gx()
    return [
        gx.expectations.ExpectColumnToExist(column=name) for name in table_format.required_columns
    ]


def content_expectations(
    table_format: TableFormat, settings: ValidationSettings, rows: int = 1
) -> list:
    """The table's expectations (row count, duplicate share), then the row expectations shared by
    both formats, then the format's own. A row expectation holds while at most
    `max_bad_row_share` of the rows fail it; those rows are set aside. A table of no `rows` is
    judged by its row count alone (a share of no rows would fail for no reason)."""
    gx = _gx()
    expect = gx.expectations
    row_count = expect.ExpectTableRowCountToBeBetween(min_value=settings.min_rows)
    if not rows:
        return [row_count]
    row = {"mostly": 1.0 - settings.max_bad_row_share}
    common = [
        row_count,
        expect.ExpectColumnMeanToBeBetween(
            column="duplicate_image", min_value=0, max_value=settings.max_duplicate_rate
        ),
        expect.ExpectColumnValuesToBeBetween(
            column="pixel_count",
            min_value=table_format.n_pixels,
            max_value=table_format.n_pixels,
            **row,
        ),
        expect.ExpectColumnValuesToBeInSet(column="pixel_non_numeric", value_set=[False], **row),
        expect.ExpectColumnValuesToBeBetween(column="pixel_max", min_value=0, max_value=255, **row),
        expect.ExpectColumnValuesToBeBetween(column="pixel_min", min_value=0, max_value=255, **row),
        expect.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="pixel_max", column_B="pixel_min", **row
        ),
    ]
    if table_format is FKD_FORMAT:
        return common + [
            expect.ExpectColumnValuesToBeInSet(
                column="keypoint_non_numeric", value_set=[False], **row
            ),
            *(
                expect.ExpectColumnValuesToBeBetween(
                    column=name, min_value=0, max_value=FACE_SIZE, **row
                )
                for name in KEYPOINT_COLUMNS
            ),
        ]
    return common + [
        expect.ExpectColumnValuesToNotBeNull(column="emotion", **row),
        expect.ExpectColumnValuesToBeInSet(column="emotion", value_set=sorted(FER_CODES), **row),
    ]


def class_count_expectations(settings: ValidationSettings) -> list:
    gx = _gx()
    return [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="rows", min_value=settings.min_rows_per_class
        )
    ]


class SuiteRunner:
    """One Great Expectations file context; its Data Docs site collects every suite it runs."""

    def __init__(self, root: Path) -> None:
        gx = _gx()
        self.root = root
        self.context = gx.get_context(mode="file", project_root_dir=str(root))
        self.data_source = self.context.data_sources.add_pandas("emotion-ai")
        self.reports: list[ValidationReport] = []

    @property
    def docs_dir(self) -> Path:
        return self.root / "gx" / "uncommitted" / "data_docs" / "local_site"

    def run(
        self,
        frame: pd.DataFrame,
        name: str,
        expectations: list,
        source: str,
        row_numbers: pd.Series | None = None,
    ) -> ValidationReport:
        """Validates `frame` against `expectations`; failures name file rows via `row_numbers`,
        and with them, every row that a passing row expectation found against it is set aside."""
        gx = _gx()
        batch_definition = self.data_source.add_dataframe_asset(
            name=name
        ).add_batch_definition_whole_dataframe("all rows")
        suite = self.context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(data=batch_definition, suite=suite, name=name)
        )
        checkpoint = self.context.checkpoints.add(
            gx.Checkpoint(
                name=name,
                validation_definitions=[definition],
                result_format="SUMMARY" if row_numbers is None else "COMPLETE",
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data docs")],
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": frame})
        results = next(iter(result.run_results.values())).results
        outcomes = [(bool(item.success), _describe(item, row_numbers, frame)) for item in results]
        failures = [text for passed, text in outcomes if not passed]
        set_aside = {} if failures or row_numbers is None else _rows_set_aside(results, row_numbers)
        report = ValidationReport(
            source, name, len(results), len(results) - len(failures), failures, outcomes, set_aside
        )
        self.reports.append(report)
        return report


def _rows_set_aside(results: list, row_numbers: pd.Series) -> dict[int, list[str]]:
    """File row -> the expectations it failed, over every row expectation of a passing suite."""
    reasons: dict[int, list[str]] = {}
    for item in results:
        for index in (item.result or {}).get("unexpected_index_list") or []:
            row = int(row_numbers.iloc[index])
            reasons.setdefault(row, []).append(_expectation_text(item.expectation_config))
    return dict(sorted(reasons.items()))


def _expectation_text(config) -> str:
    """The expectation's type, column and arguments, in words."""
    ignored = ("batch_id", "result_format", "mostly")
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ignored}
    column = kwargs.pop("column", None)
    return (
        f"{config.type}"
        + (f" on column {column!r}" if column else "")
        + (f" {kwargs}" if kwargs else "")
    )


def _describe(item, row_numbers: pd.Series | None, frame: pd.DataFrame) -> str:
    text = _expectation_text(item.expectation_config)
    details = item.result or {}
    if details.get("unexpected_count"):
        text += f": {details['unexpected_count']} unexpected"
        indexes = details.get("partial_unexpected_index_list") or []
        if row_numbers is not None and indexes:
            rows = [int(row_numbers.iloc[i]) for i in indexes[:EXAMPLE_ROWS]]
            text += f", first at file row(s) {rows}"
        elif "label" in frame.columns and indexes:
            text += f" ({frame['label'].iloc[indexes[:EXAMPLE_ROWS]].tolist()})"
        values = details.get("partial_unexpected_list") or []
        if values:
            text += f", values {values[:EXAMPLE_ROWS]}"
    elif details.get("observed_value") is not None:
        text += f": observed {details['observed_value']}"
    return text


def rejected_rows_csv(set_aside: dict[int, list[str]]) -> str:
    """The rows set aside as CSV: file row, and the expectations it failed (`; ` between)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(REJECTED_ROWS_HEADER)
    writer.writerows((row, "; ".join(why)) for row, why in set_aside.items())
    return text.getvalue()


def _raise_on_failure(report: ValidationReport) -> ValidationReport:
    if not report.success:
        raise DataValidationError(report)
    return report


def _too_many_bad_rows(report: ValidationReport, settings: ValidationSettings) -> None:
    """Says, beside a failed content suite, how many bad rows may be set aside instead."""
    if not report.success:
        report.failures.append(
            f"at most a share of {settings.max_bad_row_share} of the rows may fail a row "
            "expectation and be set aside (--max-bad-row-share); fix the file or raise it"
        )


def check_schema(
    path: Path, table_format: TableFormat, runner: SuiteRunner, source: str = ""
) -> ValidationReport:
    """Checks the header: no duplicated column, every required column present."""
    header = read_header(path)
    check_unique_columns(path, header)
    frame = pd.DataFrame(columns=header)
    suite = f"{table_format.name}-schema"
    report = runner.run(frame, suite, schema_expectations(table_format), source or str(path))
    if not report.success:
        report.failures.append(f"columns found: {header}")
    return _raise_on_failure(report)


def fer_class_counts(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows per kept emotion class (FER codes mapped to our 5 classes)."""
    labels = rows["emotion"].map(FER_CODE_TO_CLASS).dropna().astype(int)
    counts = labels.value_counts().reindex(range(len(EMOTIONS)), fill_value=0)
    return pd.DataFrame({"label": list(EMOTIONS), "rows": counts.to_numpy()})


def content_frame(table: Table) -> pd.DataFrame:
    """The per-row facts the content suite judges, with derived flags."""
    rows = table.rows.copy()
    if table.format is FKD_FORMAT:
        flags = [f"{name}_non_numeric" for name in KEYPOINT_COLUMNS]
        rows["keypoint_non_numeric"] = (
            rows[flags].any(axis=1) if len(rows) else pd.Series(dtype=bool)
        )
    rows["duplicate_image"] = (
        duplicate_flags(table.images)
        if table.images is not None
        else np.zeros(len(rows), dtype=bool)
    )
    return rows


def duplicate_flags(images: np.ndarray) -> np.ndarray:
    """True for each image byte-identical to an earlier one."""
    group = duplicate_groups(images)
    first = np.zeros(len(group), dtype=bool)
    first[np.unique(group, return_index=True)[1]] = True
    return ~first


def validate_file(
    path: Path,
    table_format: TableFormat,
    settings: ValidationSettings = ValidationSettings(),
    runner: SuiteRunner | None = None,
    source: str = "",
) -> tuple[Table, list[ValidationReport]]:
    """Runs every suite on one file; returns the parsed table and the reports, or raises. Errors and
    reports name `source` (the user's file) when given, else `path`.

    Without a `runner`, the suites run in a throw-away Great Expectations context.
    """
    if runner is None:
        with tempfile.TemporaryDirectory() as scratch:
            return validate_file(path, table_format, settings, SuiteRunner(Path(scratch)), source)
    try:
        return _validate(path, table_format, settings, runner, source or str(path))
    except DataFormatError as error:
        if not source:
            raise
        raise error.naming(source) from error


def _validate(
    path: Path,
    table_format: TableFormat,
    settings: ValidationSettings,
    runner: SuiteRunner,
    source: str,
) -> tuple[Table, list[ValidationReport]]:
    reports = [check_schema(path, table_format, runner, source)]
    table = read_table(path, table_format)
    rows = content_frame(table)
    expectations = content_expectations(table_format, settings, len(rows))
    content = runner.run(rows, f"{table_format.name}-content", expectations, source, rows["row"])
    _too_many_bad_rows(content, settings)
    reports.append(_raise_on_failure(content))
    table = table.without_rows(list(content.set_aside))
    if table_format is FER_FORMAT:
        counts = fer_class_counts(table.rows)
        reports.append(
            _raise_on_failure(
                runner.run(
                    counts, "fer2013-class-counts", class_count_expectations(settings), source
                )
            )
        )
    return table, reports
