"""What a pipeline step leaves on disk: no copy of bad input, no KFP program folder."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow
import pytest

from emotion_ai.data.formats import DataFormatError
from emotion_ai.settings import ValidationSettings
from emotion_ai.steps import data_steps
from emotion_ai.steps.io import RAW_FILE, REJECTED_ROWS_FILE, SOURCE_FILE
from emotion_ai.steps.tracking import StepContext, local_tracking
from emotion_ai.storage import write_json


def test_a_run_stopped_by_bad_data_keeps_no_copy_of_its_input(tmp_path, keypoints_csv):
    raw = {name: tmp_path / name for name in ("keypoints_raw", "fer_raw")}
    (raw["keypoints_raw"]).mkdir()
    (raw["keypoints_raw"] / RAW_FILE).write_bytes(keypoints_csv.read_bytes())
    raw["fer_raw"].mkdir()
    (raw["fer_raw"] / RAW_FILE).write_bytes(b"\x00\xff this is no csv")
    for folder, name in ((raw["keypoints_raw"], "training.csv"), (raw["fer_raw"], "fer2013.csv")):
        write_json(
            folder / SOURCE_FILE, {"source": f"/data/{name}", "sha256": "x", "size_bytes": 1}
        )
    context = StepContext(local_tracking(tmp_path / "state"))
    with pytest.raises(DataFormatError, match="/data/fer2013.csv"):
        data_steps.validate(*raw.values(), tmp_path / "kd", tmp_path / "ed", context)
    assert not any((folder / RAW_FILE).exists() for folder in raw.values())
    mlflow.set_tracking_uri(None)


def test_a_step_removes_the_program_folder_kfp_wrote_for_it():
    folder = Path(tempfile.mkdtemp(prefix="tmp."))
    (folder / "ephemeral_component.py").write_text("")
    code = (
        "import sys; from components.arguments import remove_program_folder_at_exit; sys.argv = "
        f"['executor', '--component_module_path', '{folder}/ephemeral_component.py']; "
        "remove_program_folder_at_exit()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert not folder.exists()


def test_validate_writes_the_rows_it_set_aside_beside_the_data_and_logs_them(
    tmp_path, keypoints_csv, fer_csv
):
    lines = fer_csv.read_text().splitlines()
    label, _, usage = lines[7].split(",")
    lines[7] = ",".join([label, " ".join(["0"] * 2304), usage])
    raw = {name: tmp_path / name for name in ("keypoints_raw", "fer_raw")}
    for folder, text, name in (
        (raw["keypoints_raw"], keypoints_csv.read_text(), "training.csv"),
        (raw["fer_raw"], "\n".join(lines) + "\n", "fer2013.csv"),
    ):
        folder.mkdir()
        (folder / RAW_FILE).write_text(text)
        write_json(
            folder / SOURCE_FILE, {"source": f"/data/{name}", "sha256": "x", "size_bytes": 1}
        )
    context = StepContext(local_tracking(tmp_path / "state"))
    settings = ValidationSettings(max_bad_row_share=0.01)
    profiles = data_steps.validate(
        *raw.values(), tmp_path / "kd", tmp_path / "ed", context, validation=settings
    )
    assert profiles["emotion"]["rows_set_aside"] == 1
    rejected = (tmp_path / "ed" / REJECTED_ROWS_FILE).read_text().splitlines()
    assert rejected[0] == "row,reasons" and rejected[1].startswith("8,")
    assert (tmp_path / "kd" / REJECTED_ROWS_FILE).read_text() == "row,reasons\n"
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.data.metrics["validation/fer2013-content/rows_set_aside"] == 1
    summary = Path(run.info.artifact_uri.removeprefix("file://"), "data_docs", "summary.html")
    assert "1 row(s) set aside" in summary.read_text()
    mlflow.set_tracking_uri(None)
