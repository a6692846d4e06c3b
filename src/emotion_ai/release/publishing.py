"""Publishing a champion: the registry alias and the served layout change together, or not at all.

Serving reads TF Serving's layout. Making a version champion means: export it (atomically, after
the infrastructure check: see `infra_check`), move the `champion` alias, point the `stable` version
label at it (our server answers unlabelled requests with `stable`; TF Serving, which ignores our
labels, serves the highest version), then retire any newer unlabelled version (after a rollback)
and prune old ones.
If moving the alias fails, the export made for it is withdrawn, so the registry and serving
never disagree. Other labels, such as `canary`, point at versions that receive only the
requests that name them, and are kept until the label moves.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import keras

from emotion_ai.release import model_repository, registry
from emotion_ai.release.infra_check import InfraCheckFailed, check_export
from emotion_ai.release.model_repository import STABLE
from emotion_ai.release.publish_lock import PublishBusy, publishing
from emotion_ai.settings import ReleaseSettings

logger = logging.getLogger(__name__)
PREVIOUS_CHAMPION_TAG = "previous_champion"
DEFAULT_KEEP_VERSIONS = ReleaseSettings.keep_versions
DEFAULT_LATENCY_BUDGET_MS = ReleaseSettings.latency_budget_ms
INFRA_CHECK_TAG = "infra_check"
"""Set on each version checked: `passed` or `failed`, with `infra_check_reason`."""


def publish(
    name: str,
    version: int,
    base_path: str | Path,
    keep: int = DEFAULT_KEEP_VERSIONS,
    model: keras.Model | None = None,
    record_previous: bool = True,
    latency_budget_ms: float | None = DEFAULT_LATENCY_BUDGET_MS,
    wait: bool = True,
) -> None:
    """Makes `version` of `name` the champion and the version served from `base_path`. A version
    not exported yet must pass the infrastructure check first (see `infra_check`; None skips it):
    if it fails, nothing changes and InfraCheckFailed says why. One writer at a time (see
    `publish_lock`); `wait=False` fails at once when another holds the layout."""
    with publishing(base_path, wait):
        _publish(name, version, base_path, keep, model, record_previous, latency_budget_ms)


def _publish(
    name: str,
    version: int,
    base_path: str | Path,
    keep: int,
    model: keras.Model | None,
    record_previous: bool,
    latency_budget_ms: float | None,
) -> None:
    current = registry.version_by_alias(name, registry.CHAMPION)
    exported_now = _export(name, version, base_path, model, latency_budget_ms)
    try:
        if record_previous and current is not None and int(current.version) != version:
            registry.tag_version(name, version, {PREVIOUS_CHAMPION_TAG: current.version})
        registry.set_champion(name, version)
    except BaseException:
        if exported_now:
            model_repository.remove_version(base_path, name, version)
        raise
    _serve_as_stable(name, version, base_path, keep)


def follow_champion(
    name: str, base_path: str | Path, keep: int = DEFAULT_KEEP_VERSIONS
) -> int | None:
    """Serves the registry's champion when its alias was moved some other way than `publish` (in the
    MLflow UI, say): exports that version if needed and points `stable` at it. Returns the version
    when serving changed, None when it already served the champion, there is none, or another
    writer holds the layout (the next look follows)."""
    try:
        with publishing(base_path, wait=False):
            return _follow(name, base_path, keep)
    except PublishBusy:
        logger.info("%s: another run or promote is publishing; following on the next look", name)
        return None


def _follow(name: str, base_path: str | Path, keep: int) -> int | None:
    champion = registry.version_by_alias(name, registry.CHAMPION)
    if champion is None or model_repository.read_labels(base_path, name).get(STABLE) == int(
        champion.version
    ):
        return None
    if champion.tags.get(INFRA_CHECK_TAG) == "failed":
        raise InfraCheckFailed(
            f"{name} version {champion.version} is champion but failed the infrastructure check "
            f"({champion.tags.get('infra_check_reason')}): still serving the earlier one"
        )
    version = int(champion.version)
    _export(name, version, base_path)
    _serve_as_stable(name, version, base_path, keep)
    logger.info(
        "%s: the registry's champion, version %s, is now served as %s", name, version, STABLE
    )
    return version


def _serve_as_stable(name: str, version: int, base_path: str | Path, keep: int) -> None:
    """Points `stable` at an exported version, retires newer unlabelled ones and prunes old ones."""
    labelled = set(model_repository.set_label(base_path, name, STABLE, version).values())
    check_published(name, version, base_path)
    model_repository.retire_versions_above(base_path, name, version, protected=labelled)
    model_repository.prune_versions(base_path, name, keep, protected=labelled)


def check_published(name: str, version: int, base_path: str | Path) -> None:
    """Reads the layout back: `version` must be complete and labelled `stable`, which every server
    following `base_path` then serves by default. Raises when it is not."""
    labels = model_repository.read_labels(base_path, name)
    if version not in model_repository.versions(base_path, name) or labels.get(STABLE) != version:
        raise RuntimeError(
            f"{name} version {version} is not published in {base_path}: the layout holds versions "
            f"{model_repository.versions(base_path, name)} with labels {labels}"
        )


def rollback(
    name: str, base_path: str | Path, keep: int = DEFAULT_KEEP_VERSIONS, wait: bool = True
) -> int:
    """Moves the champion back to the one it replaced; serving follows. Returns that version."""
    with publishing(base_path, wait):
        current = registry.version_by_alias(name, registry.CHAMPION)
        if current is None:
            raise ValueError(f"{name} has no champion to roll back")
        previous = current.tags.get(PREVIOUS_CHAMPION_TAG)
        if previous is None:
            raise ValueError(f"{name} version {current.version} replaced no earlier champion")
        publish(name, int(previous), base_path, keep, record_previous=False)
    return int(previous)


def label(
    name: str,
    label_name: str,
    version: int | None,
    base_path: str | Path,
    latency_budget_ms: float | None = DEFAULT_LATENCY_BUDGET_MS,
    wait: bool = True,
) -> dict[str, int]:
    """Points a version label (e.g. `canary`) at a registered version, exporting it if it is not
    served yet; None removes the label. `stable` moves only with the champion."""
    if label_name == STABLE:
        raise ValueError(f"'{STABLE}' follows the champion: use `emotion-ai promote` to move it")
    with publishing(base_path, wait):
        if version is not None:
            _export(name, version, base_path, latency_budget_ms=latency_budget_ms)
        return model_repository.set_label(base_path, name, label_name, version)


def _export(
    name: str,
    version: int,
    base_path: str | Path,
    model: keras.Model | None = None,
    latency_budget_ms: float | None = DEFAULT_LATENCY_BUDGET_MS,
) -> bool:
    """Exports a registered version unless it is published already, after the infrastructure
    check when there is a budget; True if exported now."""
    if version in model_repository.versions(base_path, name):
        return False
    model = model or registry.load_version(name, str(version))
    check = (
        partial(_check_candidate, model, name, version, latency_budget_ms)
        if latency_budget_ms is not None
        else None
    )
    model_repository.export_saved_model(model, base_path, name, version, check)
    return True


def _check_candidate(
    model: keras.Model, name: str, version: int, latency_budget_ms: float, export_dir: Path
) -> None:
    """The infrastructure check of a staged export; its outcome is tagged on the version."""
    try:
        report = check_export(model, name, export_dir, latency_budget_ms)
    except InfraCheckFailed as failure:
        registry.tag_version(
            name, version, {INFRA_CHECK_TAG: "failed", "infra_check_reason": failure.reason}
        )
        raise
    registry.tag_version(
        name,
        version,
        {
            INFRA_CHECK_TAG: "passed",
            "infra_check_engine": report.engine,
            "infra_check_slowest_ms": report.slowest_ms,
        },
    )
