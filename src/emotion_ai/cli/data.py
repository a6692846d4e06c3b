"""`emotion-ai generate-data`: synthetic data sets in the exact Kaggle formats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emotion_ai.cli.options import console


def generate_data(
    out_dir: Annotated[
        Path, typer.Argument(help="Where training.csv and fer2013.csv are written.")
    ],
    keypoint_rows: Annotated[int, typer.Option()] = 7049,
    fer_rows: Annotated[int, typer.Option()] = 35887,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Write synthetic data sets in the exact Kaggle formats."""
    from emotion_ai.data.synthetic import write_fer_csv, write_keypoints_csv

    console.print(write_keypoints_csv(out_dir / "training.csv", keypoint_rows, seed=seed))
    console.print(write_fer_csv(out_dir / "fer2013.csv", fer_rows, seed=seed + 1))
