"""The register step: register both challengers from their logged models (the model card as each
version's description), export and promote those the gate passed, and sum the pipeline run up on
its parent run."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow

from emotion_ai.logs import log_headline
from emotion_ai.modeling.persistence import load_model
from emotion_ai.release import registry
from emotion_ai.release.decisions import read_decisions
from emotion_ai.release.infra_check import InfraCheckFailed
from emotion_ai.release.model_card import MODEL_DESCRIPTIONS, UiLinks, model_card
from emotion_ai.release.publishing import publish
from emotion_ai.settings import EMOTION_MODEL, KEYPOINT_MODEL, ReleaseSettings
from emotion_ai.steps.io import DECISIONS_FILE, LINEAGE_FILE
from emotion_ai.steps.summary import HEADLINE_METRIC, METRIC_GROUP, summarize_pipeline_run
from emotion_ai.steps.tracking import StepContext, source_commit, step_run
from emotion_ai.storage import read_json

logger = logging.getLogger(__name__)


def _register_one(
    name: str,
    model_dir: Path,
    decision: dict,
    model_base_path: str | Path,
    parent_run_id: str,
    release: ReleaseSettings,
) -> dict:
    lineage = read_json(model_dir / LINEAGE_FILE)
    tags = {
        "data_sha256": lineage["data_sha256"],
        "data_source": lineage["data_source"],
        "git_commit": source_commit(),
        "pipeline_run_id": parent_run_id,
        "train_run_id": lineage["train_run_id"],
        "decision": "promote" if decision["promote"] else "reject",
        "decision_reason": decision["reason"],
        "decision_test": decision["test"],
        "decision_p_value": decision["p_value"],
        "decision_interval": decision["interval"],
        "test_metric": HEADLINE_METRIC[name],
        "test_score": decision["challenger_score"],
        "test_score_interval": decision["score_interval"],
    }
    version = registry.register_version(
        lineage["model_uri"], name, {k: str(v) for k, v in tags.items()}
    )
    links = UiLinks(mlflow.active_run().info.experiment_id)
    card = model_card(name, int(version.version), decision, lineage, links, parent_run_id)
    mlflow.log_text(card.markdown, f"model_cards/{name}-v{version.version}.md")
    mlflow.log_dict(card.facts, f"model_cards/{name}-v{version.version}.json")
    registry.describe(name, version.version, MODEL_DESCRIPTIONS[name], card.markdown)
    if not decision["promote"]:
        return {"version": int(version.version), "champion": False}
    try:
        publish(
            name,
            int(version.version),
            model_base_path,
            release.keep_versions,
            model=load_model(model_dir),
            latency_budget_ms=release.latency_budget_ms,
        )
    except InfraCheckFailed as failure:
        logger.error("%s version %s is not promoted: %s", name, version.version, failure)
        mlflow.set_tag(f"infra_check/{name}", f"failed: {failure.reason}")
        return {"version": int(version.version), "champion": False, "refused": failure.reason}
    return {"version": int(version.version), "champion": True}


def register(
    keypoint_model: Path,
    emotion_model: Path,
    report_dir: Path,
    model_base_path: str | Path,
    context: StepContext,
    release: ReleaseSettings = ReleaseSettings(),
) -> dict:
    """Registers both challengers (from their logged models, the model card as the version's
    description); exports and promotes those the gate passed; sums the pipeline run up on its
    parent run."""
    decisions = read_decisions(report_dir / DECISIONS_FILE)
    with step_run(context.tracking, context.parent_run_id, "register"):
        outcome = {
            name: _register_one(
                name, model_dir, decisions[name], model_base_path, context.parent_run_id, release
            )
            for name, model_dir in (
                (KEYPOINT_MODEL, keypoint_model),
                (EMOTION_MODEL, emotion_model),
            )
        }
        for name, result in outcome.items():
            champion = registry.version_by_alias(name, registry.CHAMPION)
            result["champion"] = champion is not None and int(champion.version) == result["version"]
        mlflow.log_dict(outcome, "registered.json")
    if context.parent_run_id:
        summarize_pipeline_run(context.parent_run_id, decisions, outcome)
    log_headline(
        logger,
        ", ".join(
            f"{METRIC_GROUP[name]} v{result['version']}"
            + (" (champion)" if result["champion"] else "")
            for name, result in outcome.items()
        ),
    )
    return outcome
