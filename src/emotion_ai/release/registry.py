"""The MLflow model registry: versions, the `challenger` and `champion` aliases, loading
champions."""

from __future__ import annotations

from datetime import datetime, timezone

import keras
import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from emotion_ai.modeling.persistence import LOAD_OPTIONS

CHAMPION = "champion"
CHALLENGER = "challenger"


def version_by_alias(name: str, alias: str) -> ModelVersion | None:
    try:
        return MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def load_version(name: str, alias_or_version: str) -> keras.Model:
    """The Keras model behind `name@alias` or `name/version`, loaded in Keras safe mode."""
    separator = "/" if alias_or_version.isdigit() else "@"
    return mlflow.keras.load_model(
        f"models:/{name}{separator}{alias_or_version}",
        load_model_kwargs=LOAD_OPTIONS,
    )


def load_champion(name: str) -> keras.Model | None:
    """The current champion of `name`, or None before the first promotion."""
    return load_version(name, CHAMPION) if version_by_alias(name, CHAMPION) is not None else None


def register_version(model_uri: str, name: str, tags: dict[str, str]) -> ModelVersion:
    """Registers a logged model as a new version of `name` and marks it the challenger."""
    version = mlflow.register_model(model_uri, name, tags=tags)
    MlflowClient().set_registered_model_alias(name, CHALLENGER, version.version)
    return version


def set_champion(name: str, version: str | int) -> None:
    MlflowClient().set_registered_model_alias(name, CHAMPION, str(version))


def describe(
    name: str, version: str | int, model_description: str, version_description: str
) -> None:
    """Sets the registered model's description and that version's (Markdown, shown in the UI)."""
    client = MlflowClient()
    client.update_registered_model(name, description=model_description)
    client.update_model_version(name, str(version), description=version_description)


MANUAL_PROMOTION = "promote (manual)"
"""The `decision` tag of a version made champion by hand (`emotion-ai promote`), not by the gate."""


def record_manual_promotion(name: str, version: str | int, who: str, when: datetime) -> None:
    """Records on the version that `who` made it champion by hand at `when`: its `decision` tag
    (the gate's own decision kept as `gate_decision`), and a section of its model card."""
    client = MlflowClient()
    current = client.get_model_version(name, str(version))
    gate = current.tags.get("decision", "none")
    at = when.astimezone(timezone.utc).isoformat(timespec="seconds")
    if gate != MANUAL_PROMOTION:
        tag_version(name, version, {"gate_decision": gate})
    tag_version(
        name, version, {"decision": MANUAL_PROMOTION, "decision_by": who, "decision_at": at}
    )
    note = (
        f"\n\n## Promoted by hand\n\n{who} made this version champion at {at} with "
        f"`emotion-ai promote`, whatever the gate had decided (`{gate}`: "
        f"{current.tags.get('decision_reason', 'no reason recorded')}).\n"
    )
    client.update_model_version(name, str(version), description=(current.description or "") + note)


def tag_version(name: str, version: str | int, tags: dict[str, object]) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, str(value))
