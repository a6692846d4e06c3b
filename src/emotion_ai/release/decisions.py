"""The evaluate step's report, as it crosses to the register step: a typed schema, written and read
strictly, so a value of the wrong type (a NumPy bool, a number as text) is refused where it is made
instead of being taken for another (`"False"` is truthy)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ConfigDict, RootModel

from emotion_ai.release.gate import Decision
from emotion_ai.storage import write_text_atomically


class ModelDecision(Decision):
    """One model's gate decision with the figures behind it."""

    model_config = ConfigDict(strict=True, extra="forbid", ser_json_inf_nan="constants")

    metrics: dict[str, float]
    confusion_matrix: list[list[int]] | None = None
    data: dict[str, object]


class DecisionReport(RootModel[dict[str, ModelDecision]]):
    """Every model's decision, by registered model name."""

    model_config = ConfigDict(strict=True, ser_json_inf_nan="constants")


def write_decisions(path: Path, decisions: list[dict]) -> dict[str, dict]:
    """Validates `decisions` (refusing any value of the wrong type) and writes them atomically;
    returns them as plain JSON values, exactly as `read_decisions` will give them back."""
    report = DecisionReport({d["model"]: ModelDecision(**d) for d in decisions})
    text = report.model_dump_json(indent=2)
    write_text_atomically(path, text)
    return read_decisions(path)


def read_decisions(path: Path) -> dict[str, dict]:
    """The report `write_decisions` wrote, validated again on the way in."""
    report = DecisionReport.model_validate_json(Path(path).read_text(), strict=True)
    return {name: decision.model_dump(mode="json") for name, decision in report.root.items()}
