"""Publishing a champion: the registry alias and the served layout change together, or not at all.

Serving reads TF Serving's layout and serves the highest version present, so making a
version champion means: export it (atomically), move the `champion` alias, then retire any
newer published version (after a rollback) and prune old ones. If moving the alias fails,
the export made for it is withdrawn, so the registry and serving never disagree.
"""

from __future__ import annotations

from pathlib import Path

import keras

from emotion_ai import export, registry

PREVIOUS_CHAMPION_TAG = "previous_champion"
DEFAULT_KEEP_VERSIONS = 3


def publish(name: str, version: int, base_path: str | Path, keep: int = DEFAULT_KEEP_VERSIONS,
            model: keras.Model | None = None, record_previous: bool = True) -> None:
    """Makes `version` of `name` the champion and the version served from `base_path`."""
    current = registry.version_by_alias(name, registry.CHAMPION)
    exported_now = version not in export.versions(base_path, name)
    if exported_now:
        model = model or registry.load_version(name, str(version))
        export.export_saved_model(model, base_path, name, version)
    try:
        if record_previous and current is not None and int(current.version) != version:
            registry.tag_version(name, version, {PREVIOUS_CHAMPION_TAG: current.version})
        registry.set_champion(name, version)
    except BaseException:
        if exported_now:
            export.remove_version(base_path, name, version)
        raise
    export.retire_versions_above(base_path, name, version)
    export.prune_versions(base_path, name, keep, protected={version})


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
