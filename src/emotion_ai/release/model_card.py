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
MODEL_DESCRIPTIONS = {
    KEYPOINT_MODEL: "15 facial keypoints (30 coordinates in pixels) on a 96x96 grayscale face, "
    "trained on Kaggle Facial Keypoints Detection data. Each version's description is its model "
    "card.",
    EMOTION_MODEL: "5 emotions (Angry, Disgust, Sad, Happy, Surprise) of a 96x96 grayscale face, "
    "trained on FER2013 without its Fear and Neutral rows. Each version's description is its "
    "model card.",
}
"""The registered models' own descriptions."""
KNOWN_LIMITS = {
    KEYPOINT_MODEL: [
        "Kaggle's keypoint file has all 15 keypoints on only about 2,140 of its 7,049 faces; the "
        "others train only the keypoints they have, so the rarer keypoints (eyebrows, eye "
        "corners, mouth corners) rest on fewer faces.",
        "It expects a centred, upright, roughly frontal face framed like the Kaggle crops; "
        "rotated, off-centre or profile faces have larger errors.",
        "The Kaggle faces skew in age, ethnicity and lighting; the error on under-represented "
        "groups is not measured here.",
    ],
    EMOTION_MODEL: [
        "FER2013 labels are noisy (human agreement is about 65%); Disgust is rare, so its recall "
        "is uncertain.",
        "FER2013 skews in age, ethnicity and pose; accuracy on under-represented groups is not "
        "measured here.",
        "Expressions are posed or stereotyped; spontaneous expressions and non-frontal faces are "
        "harder.",
    ],
}
SYNTHETIC_LIMIT = (
    "Trained and tested on SYNTHETIC faces drawn by emotion_ai.synthetic: its scores say the "
    "pipeline works, not that the model works on real faces."
)
HEADLINE = {
    KEYPOINT_MODEL: (
        "rmse_px",
        "RMSE in px over every present keypoint coordinate of the test faces (lower is better)",
    ),
    EMOTION_MODEL: ("accuracy", "accuracy on the test faces (higher is better)"),
}
"""The metric each card leads with, with its bootstrap interval, and what it is."""


MODEL_TRAINING_VIEW = "?workflowType=machine_learning"
"""Opens an MLflow 3 UI page in its model-training mode (Runs, Models, Model registry); without it,
a page opened from a link shows the GenAI navigation."""


@dataclass(frozen=True)
class UiLinks:
    """Addresses inside the MLflow UI, relative (`#/...`) so they work whatever its host."""

    experiment_id: str

    def run(self, run_id: str) -> str:
        return f"#/experiments/{self.experiment_id}/runs/{run_id}{MODEL_TRAINING_VIEW}"

    def logged_model(self, model_id: str) -> str:
        return f"#/experiments/{self.experiment_id}/models/{model_id}{MODEL_TRAINING_VIEW}"

    @staticmethod
    def version(name: str, version: int | str) -> str:
        return f"#/models/{name}/versions/{version}{MODEL_TRAINING_VIEW}"


@dataclass
class ModelCard:
    facts: dict
    markdown: str


def model_card(
    name: str, version: int, decision: dict, lineage: dict, links: UiLinks, pipeline_run_id: str
) -> ModelCard:
    """The card of one registered version, from its evaluation report and training lineage."""
    data = decision["data"]
    limits = KNOWN_LIMITS[name] + (
        [SYNTHETIC_LIMIT] if str(data.get("source", "")).startswith("synthetic") else []
    )
    facts = {
        "model": name,
        "version": version,
        "data": {k: data.get(k) for k in ("source", "sha256", "rows", "split", "class_counts")},
        "train_run_id": lineage["train_run_id"],
        "model_id": lineage.get("model_id"),
        "pipeline_run_id": pipeline_run_id,
        "metrics": decision["metrics"],
        "score": decision["challenger_score"],
        "score_interval": decision["score_interval"],
        "decision": {k: decision[k] for k in ("promote", "reason", "test", "p_value", "interval")},
        "intended_use": INTENDED_USE[name],
        "known_limits": limits,
    }
    return ModelCard(facts, _markdown(facts, decision.get("confusion_matrix"), links))


def _lineage(facts: dict, links: UiLinks) -> list[str]:
    lines = [
        "",
        "## Lineage",
        f"- training run: [{facts['train_run_id']}]({links.run(facts['train_run_id'])})",
    ]
    if facts["model_id"]:
        lines.append(
            f"- logged model: [{facts['model_id']}]({links.logged_model(facts['model_id'])})"
        )
    if facts["pipeline_run_id"]:
        lines.append(
            f"- pipeline run: [{facts['pipeline_run_id']}]({links.run(facts['pipeline_run_id'])})"
        )
    return lines


def _markdown(facts: dict, confusion: list | None, links: UiLinks) -> str:
    low, high = facts["score_interval"] or (float("nan"), float("nan"))
    headline, meaning = HEADLINE[facts["model"]]
    lines = [
        f"# {facts['model']} version {facts['version']}",
        "",
        "## Data",
        f"- source: `{facts['data']['source']}`",
        f"- sha256: `{facts['data']['sha256']}`",
        f"- rows: {facts['data']['rows']}, split: {facts['data']['split']}",
        "",
        "## Test metrics",
        f"- {headline}: {facts['score']:.4f} (95% bootstrap interval {low:.4f} .. {high:.4f}), "
        f"the {meaning}",
    ]
    others = {key: value for key, value in facts["metrics"].items() if key != headline}
    lines += [f"- {key}: {value:.4f}" for key, value in others.items() if "/" not in key]
    lines += [f"- {key}: {value:.4f}" for key, value in others.items() if "/" in key]
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
        *_lineage(facts, links),
        "",
    ]
    return "\n".join(lines)
