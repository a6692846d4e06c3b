"""README and docs/ name only what exists: every `emotion_ai.*` module or attribute, every
`emotion-ai` command; README stays short (the depth lives in docs/)."""

from __future__ import annotations

import importlib
import json
import re
import shlex
from pathlib import Path

import typer

from emotion_ai.cli import app
from emotion_ai.cli.settings_options import flag, unique_option_fields
from emotion_ai.settings import TrainSettings

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOTTED = re.compile(r"\bemotion_ai(?:\.[A-Za-z_]\w*)+")
PATH = re.compile(
    r"\b(?:src|components|pipelines|bench|infra|tests)/[\w/.-]*\w\.(?:py|ya?ml|md|json)\b"
)
COMMAND = re.compile(r"\bemotion-ai ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)")
REAL_DATA_COMMAND = re.compile(
    r"^uv run emotion-ai run ([^`]*--split-by-usage[^`]*)$", re.MULTILINE
)
DATA_OPTIONS = {"--keypoints-csv", "--fer-csv", "--split-by-usage"}


def _resolves(dotted: str) -> bool:
    """An importable module, or an attribute chain under the longest importable prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def _tag_names() -> set[str]:
    """`emotion_ai.*` strings the code writes as MLflow tag keys (`emotion_ai.step`): names, not
    modules."""
    source = ROOT / "src" / "emotion_ai"
    names = set()
    for path in source.rglob("*.py"):
        names.update(re.findall(r"[\"'](emotion_ai\.[\w.]+)[\"']", path.read_text()))
    return names | {f"{name}.source_run_id" for name in names}


def test_every_emotion_ai_name_in_the_docs_exists():
    named = {name.rstrip(".") for page in PAGES for name in DOTTED.findall(page.read_text())}
    modules = named - _tag_names()
    assert len(modules) >= 5
    assert [name for name in sorted(modules) if not _resolves(name)] == []


def test_every_project_file_the_docs_name_exists():
    named = {path for page in PAGES for path in PATH.findall(page.read_text())}
    assert len(named) > 5
    assert sorted(path for path in named if not (ROOT / path).exists()) == []


def test_every_emotion_ai_command_in_the_docs_exists():
    commands = typer.main.get_command(app).commands
    missing = set()
    for page in PAGES:
        for words in COMMAND.findall(page.read_text()):
            first, *rest = words.split()
            if first not in commands:
                missing.add(f"{page.name}: emotion-ai {first}")
            elif rest and hasattr(commands[first], "commands"):
                if rest[0] not in commands[first].commands:
                    missing.add(f"{page.name}: emotion-ai {words}")
    assert missing == set()


def test_the_readme_is_for_users_and_links_every_page_of_docs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.split()) < 1500
    for page in (ROOT / "docs").glob("*.md"):
        assert f"(docs/{page.name})" in readme, page.name


def _options(words: list[str]) -> dict[str, str]:
    """`--name value` and bare `--flag` words as {name: value, or "" for a flag}, numbers in one
    spelling."""
    following = [*words[1:], "--"]
    return {
        word: "" if after.startswith("--") else _as_number(after)
        for word, after in zip(words, following, strict=True)
        if word.startswith("--")
    }


def _as_number(value: str) -> str:
    """A number in one spelling (`0`, `0.0` -> `0.0`); any other value as it is."""
    try:
        return str(float(value))
    except ValueError:
        return value


def _options_of_both_models() -> set[str]:
    """The run options that set both models (absent from a recipe: at their default), but
    `--epochs`, which `--keypoint-epochs` overrides for the keypoint model."""
    return {
        flag(item)
        for item, _, _ in unique_option_fields(TrainSettings)
        if "only" not in item.metadata
    } - {"--epochs"}


def test_the_readme_real_data_command_is_the_benchmarked_recipe():
    """README's real-data command trains each model with the recipe whose figures
    bench/results/quality.json records (issue: the user's command is the headline command)."""
    recorded = json.loads((ROOT / "bench" / "results" / "quality.json").read_text())
    emotion, keypoints = (
        _options(recorded[f"{part}.emotion_ai_run_flags"].split())
        for part in ("fer2013", "fkd_teacher")
    )
    shared = _options_of_both_models() | (emotion.keys() & keypoints.keys())
    assert {"--width", "--batch-size", "--weight-decay"} <= shared
    assert {name: emotion.get(name) for name in shared} == {
        name: keypoints.get(name) for name in shared
    }, "an option both models train with differs between the recorded recipes"
    command = REAL_DATA_COMMAND.search((ROOT / "README.md").read_text()).group(1)
    readme = _options(shlex.split(command.replace("\\\n", " ")))
    training = {name: value for name, value in readme.items() if name not in DATA_OPTIONS}
    assert training == emotion | keypoints
