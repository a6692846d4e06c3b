"""The data steps: ingest (fetch and fingerprint) and validate (check, split, profile).

They never import TensorFlow, so their containers and subprocesses start quickly.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict
from pathlib import Path

import mlflow

from emotion_ai.data import synthetic
from emotion_ai.data.datasets import (
    TEST,
    TRAIN,
    VAL,
    emotion_dataset,
    keypoint_dataset,
    load_dataset,
    save_dataset,
)
from emotion_ai.data.formats import FER_FORMAT, FKD_FORMAT, DataFormatError, TableFormat
from emotion_ai.data.image_folders import FACES_REPORT, FacesOf
from emotion_ai.data.profiles import data_profile
from emotion_ai.data.sources import fetch
from emotion_ai.data.validation import (
    EXAMPLE_ROWS,
    DataValidationError,
    SuiteRunner,
    ValidationReport,
    rejected_rows_csv,
    validate_file,
)
from emotion_ai.data.validation_summary import SUMMARY_FILE, summary_html
from emotion_ai.logs import log_headline
from emotion_ai.settings import SourceSettings, SplitSettings, ValidationSettings
from emotion_ai.steps.cache import cache_key
from emotion_ai.steps.data_inputs import log_data_inputs
from emotion_ai.steps.io import (
    DATASET_FILE,
    PROFILE_FILE,
    RAW_FILE,
    REJECTED_ROWS_FILE,
    SOURCE_FILE,
    remember_outputs,
    reuse_cached,
)
from emotion_ai.steps.tracking import (
    TRIGGER_TAG,
    StepContext,
    start_parent_run,
    step_run,
)
from emotion_ai.storage import read_json, write_json, write_text_atomically

logger = logging.getLogger(__name__)


def _faces_of(sources: SourceSettings, name: str) -> FacesOf | None:
    """The face finder for FER photo folders, when asked for (imported only then: it brings
    TensorFlow, which the data steps otherwise never load)."""
    if name != "fer" or not sources.detect_faces:
        return None
    from emotion_ai.photos.analysis import fer_faces_of
    from emotion_ai.photos.detection import FaceDetector

    return fer_faces_of(FaceDetector())


def _log_faces_report(name: str, out_dir: Path) -> None:
    """What face finding made of a folder of photos: metrics, the report, and a warning naming the
    photos left out."""
    path = out_dir / FACES_REPORT
    if not path.is_file():
        return
    report = read_json(path)
    mlflow.log_metrics(
        {
            f"data/{name}/photos": report["photos"],
            f"data/{name}/photos_with_one_face": report["kept"],
            f"data/{name}/photos_without_face": len(report["no_face"]),
            f"data/{name}/photos_with_several_faces": len(report["several_faces"]),
        }
    )
    mlflow.log_artifact(str(path), "data")
    for reason in ("no_face", "several_faces"):
        if report[reason]:
            logger.warning(
                "%d photos left out (%s): %s",
                len(report[reason]),
                reason.replace("_", " "),
                ", ".join(report[reason][:10]) + (" ..." if len(report[reason]) > 10 else ""),
            )


def _ingest_one(
    source: str, out_dir: Path, write_synthetic, sources: SourceSettings, name: str
) -> dict:
    """Fetches one source (or writes synthetic data when `source` is empty) and fingerprints it."""
    if not source:
        rows, seed = sources.synthetic_rows, sources.seed
        generated = write_synthetic(out_dir / "synthetic.csv", rows, seed=seed)
        fingerprint = fetch(str(generated), out_dir / RAW_FILE).as_dict()
        generated.unlink()
        fingerprint["source"] = f"synthetic:{write_synthetic.__name__}(rows={rows}, seed={seed})"
    else:
        fingerprint = fetch(source, out_dir / RAW_FILE, _faces_of(sources, name)).as_dict()
    write_json(out_dir / SOURCE_FILE, fingerprint)
    return fingerprint


def ingest(
    sources: SourceSettings,
    keypoints_raw: Path,
    fer_raw: Path,
    context: StepContext,
    trigger: str = "manual",
) -> str:
    """Brings both data sets in and fingerprints them; returns the pipeline's parent run id
    (a new one, tagged with why the run started, when the context has none)."""
    parent_run_id = context.parent_run_id or start_parent_run(
        context.tracking, "emotion-ai pipeline", {TRIGGER_TAG: trigger}
    )
    sizes = []
    with step_run(context.tracking, parent_run_id, "ingest"):
        for name, source, out_dir, writer in (
            ("keypoints", sources.keypoints_source, keypoints_raw, synthetic.write_keypoints_csv),
            ("fer", sources.fer_source, fer_raw, synthetic.write_fer_csv),
        ):
            fingerprint = _ingest_one(source, out_dir, writer, sources, name)
            _log_faces_report(name, out_dir)
            mlflow.log_params(
                {
                    f"data/{name}/source": fingerprint["source"],
                    f"data/{name}/sha256": fingerprint["sha256"],
                }
            )
            mlflow.log_metric(f"data/{name}/size_bytes", fingerprint["size_bytes"])
            sizes.append(f"{name} {fingerprint['size_bytes'] / 1e6:.1f} MB")
    log_headline(logger, ", ".join(sizes))
    return parent_run_id


def _validate_one(
    raw_dir: Path,
    table_format: TableFormat,
    validation: ValidationSettings,
    build,
    split: SplitSettings,
    data_dir: Path,
    runner: SuiteRunner,
) -> dict:
    """Validates one raw file and writes its data set and reference profile; returns the profile."""
    provenance = read_json(raw_dir / SOURCE_FILE)
    try:
        table, reports = validate_file(
            raw_dir / RAW_FILE, table_format, validation, runner, provenance["source"]
        )
    except DataValidationError as error:
        _log_report(table_format, error.report)
        raise
    for report in reports:
        _log_report(table_format, report)
    set_aside = _write_rejected_rows(reports, data_dir, provenance["source"])
    dataset = build(table, split, {**provenance, "rows_set_aside": len(set_aside)})
    profile = data_profile(dataset)
    save_dataset(dataset, data_dir / DATASET_FILE)
    write_json(data_dir / PROFILE_FILE, profile)
    return profile


def _write_rejected_rows(
    reports: list[ValidationReport], data_dir: Path, source: str
) -> dict[int, list[str]]:
    """Writes the rows set aside (file row and why) beside the data set, logs them to the run and
    warns naming them; returns them."""
    set_aside = {row: why for report in reports for row, why in report.set_aside.items()}
    text = rejected_rows_csv(set_aside)
    write_text_atomically(data_dir / REJECTED_ROWS_FILE, text)
    if set_aside:
        mlflow.log_text(text, f"validation/{data_dir.name}-{REJECTED_ROWS_FILE}")
        rows = list(set_aside)
        logger.warning(
            "%s: %d bad row(s) set aside, file rows %s%s (each with its reason in %s)",
            source,
            len(rows),
            rows[:EXAMPLE_ROWS],
            " ..." if len(rows) > EXAMPLE_ROWS else "",
            REJECTED_ROWS_FILE,
        )
    return set_aside


def _log_report(table_format: TableFormat, report: ValidationReport) -> None:
    mlflow.log_metrics(
        {
            f"validation/{report.suite}/passed": report.passed,
            f"validation/{report.suite}/failed": report.evaluated - report.passed,
            f"validation/{report.suite}/rows_set_aside": len(report.set_aside),
        }
    )
    if report.failures:
        mlflow.log_text("\n".join(report.failures), f"validation/{report.suite}-failures.txt")
        mlflow.set_tag(f"validation/{table_format.name}", "failed")


def _log_data_docs(runner: SuiteRunner) -> None:
    """GX's Data Docs and our one-page summary beside them (it renders offline): `data_docs/`."""
    runner.docs_dir.mkdir(parents=True, exist_ok=True)
    (runner.docs_dir / SUMMARY_FILE).write_text(summary_html(runner.reports), encoding="utf-8")
    mlflow.log_artifacts(str(runner.docs_dir), "data_docs")


def _drop_raw_copies(*raw_dirs: Path) -> None:
    """A run stopped by bad data keeps no copy of its input: the error names the user's own file,
    and a large file would otherwise cost its size in disk for every failed run."""
    for raw_dir in raw_dirs:
        (raw_dir / RAW_FILE).unlink(missing_ok=True)


def _validate_both(
    keypoints_raw: Path,
    fer_raw: Path,
    keypoints_data: Path,
    emotion_data: Path,
    split: SplitSettings,
    validation: ValidationSettings,
) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        runner = SuiteRunner(Path(scratch))
        try:
            return {
                "keypoints": _validate_one(
                    keypoints_raw,
                    FKD_FORMAT,
                    validation,
                    keypoint_dataset,
                    split,
                    keypoints_data,
                    runner,
                ),
                "emotion": _validate_one(
                    fer_raw, FER_FORMAT, validation, emotion_dataset, split, emotion_data, runner
                ),
            }
        except (DataFormatError, DataValidationError):
            _drop_raw_copies(keypoints_raw, fer_raw)
            raise
        finally:
            _log_data_docs(runner)


def _set_aside_note(profiles: dict) -> str:
    count = sum(profile.get("rows_set_aside", 0) for profile in profiles.values())
    return f", {count} bad row(s) set aside ({REJECTED_ROWS_FILE})" if count else ""


def validate(
    keypoints_raw: Path,
    fer_raw: Path,
    keypoints_data: Path,
    emotion_data: Path,
    context: StepContext,
    split: SplitSettings = SplitSettings(),
    validation: ValidationSettings = ValidationSettings(),
    cache_root: str = "",
) -> dict:
    """Validates both raw files (fails closed), writes the compact split data sets and their
    profiles.

    The Great Expectations Data Docs are logged to MLflow whether validation passes or fails.
    With a `cache_root`, unchanged raw files and settings reuse the data sets written last time.
    """
    with step_run(context.tracking, context.parent_run_id, "validate"):
        parameters = {
            **{f"split/{k}": v for k, v in asdict(split).items()},
            **{f"validation/{k}": v for k, v in asdict(validation).items()},
        }
        mlflow.log_params(parameters)
        outputs = {"keypoints": keypoints_data, "emotion": emotion_data}
        key = cache_key("validate", [keypoints_raw, fer_raw], parameters)
        cached = reuse_cached(cache_root, "validate", key, outputs)
        if cached:
            profiles = {name: read_json(folder / PROFILE_FILE) for name, folder in outputs.items()}
        else:
            profiles = _validate_both(
                keypoints_raw, fer_raw, keypoints_data, emotion_data, split, validation
            )
            remember_outputs(cache_root, "validate", key, outputs)
        for folder in outputs.values():
            log_data_inputs(load_dataset(folder / DATASET_FILE), (TRAIN, VAL, TEST))
        mlflow.log_dict(profiles, "data_profile.json")
        mlflow.log_metrics(
            {
                "data/keypoints/rows": profiles["keypoints"]["rows"],
                "data/emotion/rows": profiles["emotion"]["rows"],
                **{
                    f"data/emotion/class_share/{k}": v
                    for k, v in profiles["emotion"]["class_share"].items()
                },
            }
        )
    log_headline(
        logger,
        f"{profiles['keypoints']['rows']:,} keypoint and {profiles['emotion']['rows']:,} emotion "
        "rows validated" + _set_aside_note(profiles) + (" (cached)" if cached else ""),
    )
    return profiles
