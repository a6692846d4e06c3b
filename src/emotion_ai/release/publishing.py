"""Publishing a champion: the registry alias and the served layout change together, or not at all.

Serving reads TF Serving's layout. Making a version champion means: export it (atomically),
move the `champion` alias, point the `stable` version label at it (our server answers
unlabelled requests with `stable`; TF Serving, which ignores our labels, serves the highest
version), then retire any newer unlabelled version (after a rollback) and prune old ones.
If moving the alias fails, the export made for it is withdrawn, so the registry and serving
never disagree. Other labels, such as `canary`, point at versions that receive only the
requests that name them, and are kept until the label moves.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras

from emotion_ai.release import model_repository, registry
from emotion_ai.release.model_repository import STABLE
from emotion_ai.settings import ReleaseSettings

logger = logging.getLogger(__name__)
PREVIOUS_CHAMPION_TAG = "previous_champion"
DEFAULT_KEEP_VERSIONS = ReleaseSettings.keep_versions


def publish(
    name: str,
    version: int,
    base_path: str | Path,
    keep: int = DEFAULT_KEEP_VERSIONS,
    model: keras.Model | None = None,
    record_previous: bool = True,
) -> None:
    """Makes `version` of `name` the champion and the version served from `base_path`."""
    current = registry.version_by_alias(name, registry.CHAMPION)
    exported_now = _export(name, version, base_path, model)
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
    when serving changed, None when it already served the champion or there is none."""
    champion = registry.version_by_alias(name, registry.CHAMPION)
    if champion is None or model_repository.read_labels(base_path, name).get(STABLE) == int(
        champion.version
    ):
        return None
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


def rollback(name: str, base_path: str | Path, keep: int = DEFAULT_KEEP_VERSIONS) -> int:
    """Moves the champion back to the one it replaced; serving follows. Returns that version."""
    current = registry.version_by_alias(name, registry.CHAMPION)
    if current is None:
        raise ValueError(f"{name} has no champion to roll back")
    previous = current.tags.get(PREVIOUS_CHAMPION_TAG)
    if previous is None:
        raise ValueError(f"{name} version {current.version} replaced no earlier champion")
    publish(name, int(previous), base_path, keep, record_previous=False)
    return int(previous)


def label(name: str, label_name: str, version: int | None, base_path: str | Path) -> dict[str, int]:
    """Points a version label (e.g. `canary`) at a registered version, exporting it if it is not
    served yet; None removes the label. `stable` moves only with the champion."""
    if label_name == STABLE:
        raise ValueError(f"'{STABLE}' follows the champion: use `emotion-ai promote` to move it")
    if version is not None:
        _export(name, version, base_path)
    return model_repository.set_label(base_path, name, label_name, version)


def _export(
    name: str, version: int, base_path: str | Path, model: keras.Model | None = None
) -> bool:
    """Exports a registered version unless it is published already; True if exported now."""
    if version in model_repository.versions(base_path, name):
        return False
    model_repository.export_saved_model(
        model or registry.load_version(name, str(version)), base_path, name, version
    )
    return True
