"""Model cards: what a registered version was trained on, how well it does, and where it must not be
trusted."""

from __future__ import annotations

from dataclasses import dataclass

from emotion_ai.faces import EMOTIONS
from emotion_ai.settings import EMOTION_MODEL, KEYPOINT_MODEL

INTENDED_USE = {
    KEYPOINT_MODEL: "Locating 15 facial keypoints on a centred, roughly frontal 96x96 grayscale "
    "face crop, e.g. to align faces or drive filters. Not for identification.",
    EMOTION_MODEL: "Estimating which of 5 posed expressions (Angry, Disgust, Sad, Happy, "
    "Surprise) a centred face crop shows, for aggregate analytics and demos. Not for decisions "
    "about individuals (hiring, policing, health, education).",
}
KNOWN_LIMITS = [
    "FER2013 labels are noisy (human agreement is about 65%); Disgust is rare, so its recall is "
    "uncertain.",
    "FER2013 and the Kaggle keypoint faces skew in age, ethnicity and pose; accuracy on "
    "under-represented groups is not measured here.",
    "Expressions are posed or stereotyped; spontaneous expressions and non-frontal faces are "
    "harder.",
]
SYNTHETIC_LIMIT = (
    "Trained and tested on SYNTHETIC faces drawn by emotion_ai.synthetic: its scores say the "
    "pipeline works, not that the model works on real faces."
)


HEADLINE_METRICS = {"accuracy", "rmse_px"}
"""Shown first, with their bootstrap interval."""


@dataclass
class ModelCard:
    facts: dict
    markdown: str


def model_card(name: str, version: int, decision: dict, lineage: dict) -> ModelCard:
    """The card of one registered version, from its evaluation report and training lineage."""
    data = decision["data"]
    limits = KNOWN_LIMITS + (
        [SYNTHETIC_LIMIT] if str(data.get("source", "")).startswith("synthetic") else []
    )
    facts = {
        "model": name,
        "version": version,
        "data": {k: data.get(k) for k in ("source", "sha256", "rows", "split", "class_counts")},
        "train_run_id": lineage["train_run_id"],
        "metrics": decision["metrics"],
        "score": decision["challenger_score"],
        "score_interval": decision["score_interval"],
        "decision": {k: decision[k] for k in ("promote", "reason", "test", "p_value", "interval")},
        "intended_use": INTENDED_USE[name],
        "known_limits": limits,
    }
    return ModelCard(facts, _markdown(facts, decision.get("confusion_matrix")))


def _markdown(facts: dict, confusion: list | None) -> str:
    low, high = facts["score_interval"] or (float("nan"), float("nan"))
    unit = "px RMSE" if facts["model"] == KEYPOINT_MODEL else "accuracy"
    lines = [
        f"# {facts['model']} version {facts['version']}",
        "",
        "## Data",
        f"- source: `{facts['data']['source']}`",
        f"- sha256: `{facts['data']['sha256']}`",
        f"- rows: {facts['data']['rows']}, split: {facts['data']['split']}",
        "",
        "## Test metrics",
        f"- {unit}: {facts['score']:.4f} (95% bootstrap interval {low:.4f} .. {high:.4f})",
    ]
    others = {key: value for key, value in facts["metrics"].items() if key not in HEADLINE_METRICS}
    lines += [f"- {key}: {value:.4f}" for key, value in others.items() if "." not in key]
    lines += [f"- {key}: {value:.4f}" for key, value in others.items() if "." in key]
    if confusion is not None:
        lines += [
            "",
            "## Confusion matrix (rows true, columns predicted)",
            "",
            "| | " + " | ".join(EMOTIONS) + " |",
            "|---" * (len(EMOTIONS) + 1) + "|",
        ]
        lines += [
            f"| {EMOTIONS[i]} | " + " | ".join(str(c) for c in row) + " |"
            for i, row in enumerate(confusion)
        ]
    decision = facts["decision"]
    lines += [
        "",
        "## Promotion decision",
        f"- {'promoted' if decision['promote'] else 'not promoted'}: {decision['reason']} "
        f"({decision['test']})",
        "",
        "## Intended use",
        facts["intended_use"],
        "",
        "## Known limits",
        *[f"- {limit}" for limit in facts["known_limits"]],
        "",
    ]
    return "\n".join(lines)
