"""`emotion-ai predict`: every face in photos, folders and videos, on the champion models, without a
server."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.table import Table
from rich.text import Text

from emotion_ai.cli.options import (
    DEFAULT_STATE_DIR,
    ModelBasePath,
    StateDir,
    console,
    serving_dir,
)
from emotion_ai.cli.settings_options import takes_settings
from emotion_ai.data.image_folders import IMAGE_SUFFIXES
from emotion_ai.faces import EMOTIONS
from emotion_ai.settings import (
    EMOTION_MODEL,
    KEYPOINT_MODEL,
    DetectorSettings,
    ServingOptions,
)


@dataclass
class Inputs:
    photos: list[Path]
    videos: list[Path]


class UnreadableInput(ValueError):
    """A photo or video that could not be read; the others are still analysed."""


def collect_inputs(paths: list[Path]) -> Inputs:
    """Photos and videos among `paths`, folders searched (not recursively); anything else is an
    error naming it."""
    from emotion_ai.photos.video import VIDEO_SUFFIXES

    photos, videos = [], []
    for path in paths:
        if not path.exists():
            raise typer.BadParameter(f"{path} does not exist")
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for file in files:
            suffix = file.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                photos.append(file)
            elif suffix in VIDEO_SUFFIXES:
                videos.append(file)
            elif not path.is_dir():
                raise typer.BadParameter(
                    f"{file} is neither a photo ({', '.join(IMAGE_SUFFIXES)}) nor a video "
                    f"({', '.join(VIDEO_SUFFIXES)})"
                )
    return Inputs(photos, videos)


class ChampionModels:
    """The served champions (the versions labelled `stable`, else the newest) of both models, run
    in this process on the server's engine."""

    def __init__(self, base_path: str) -> None:
        from emotion_ai.serving.servables import SavedModelServable

        options = ServingOptions(enable_batching=False)
        parts = [
            SavedModelServable(name, base_path, options) for name in (KEYPOINT_MODEL, EMOTION_MODEL)
        ]
        for part in parts:
            part.load()
        self.keypoints, self.emotion = (part.find() for part in parts)
        self.versions = {part.name: part.version for part in parts}

    def __call__(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        faces = faces.astype(np.float32)
        return self.keypoints.infer_now(faces), self.emotion.infer_now(faces)


def annotation_path(annotate: Path, source: Path, suffix: str, several: bool) -> Path:
    """Where the annotated copy of `source` goes: `annotate` itself for a lone input named with
    the right suffix, else `annotate/<name><suffix>`."""
    if not several and annotate.suffix.lower() == suffix:
        annotate.parent.mkdir(parents=True, exist_ok=True)
        return annotate
    annotate.mkdir(parents=True, exist_ok=True)
    return annotate / f"{source.stem}{suffix}"


def face_table(source: Path, faces: list[dict]) -> Table:
    """A row per face: where it is, how sure the detector is, and the emotion with its probability
    (`--json` has the keypoints and all five probabilities)."""
    table = Table(title=f"{source.name}: {len(faces)} face{'s' if len(faces) != 1 else ''}")
    for column in ("face", "box x, y, w, h", "score", "emotion", "p", "runner-up"):
        table.add_column(column, justify="left" if column in ("emotion", "runner-up") else "right")
    for index, face in enumerate(faces, start=1):
        ranked = np.argsort(face["probabilities"])[::-1]
        table.add_row(
            str(index),
            ", ".join(f"{v:.0f}" for v in face["box"]),
            f"{face['score']:.3f}",
            face["emotion"],
            f"{face['probabilities'][ranked[0]]:.2f}",
            f"{EMOTIONS[ranked[1]]} {face['probabilities'][ranked[1]]:.2f}",
        )
    return table


@takes_settings
def predict(
    detector_settings: DetectorSettings,
    paths: Annotated[
        list[Path], typer.Argument(help="Photos (PNG, JPEG), folders of them, and videos.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (one object per input) instead of tables.")
    ] = False,
    annotate: Annotated[
        Optional[Path],
        typer.Option(
            help="Write each photo as a PNG with boxes, keypoints and emotions drawn (and each "
            "video as an annotated MP4): this file for one input, else a folder."
        ),
    ] = None,
    fps: Annotated[float, typer.Option(min=0.1, help="Video frames analysed per second.")] = 2.0,
    timeline: Annotated[
        Optional[Path],
        typer.Option(
            help="Folder for each video's emotion timeline: <video>.csv, .json and a .png plot "
            "of every face's probabilities over time (default: beside --annotate, else "
            "STATE_DIR/timelines)."
        ),
    ] = None,
    model_base_path: ModelBasePath = None,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Find every face in photos and videos and say what it feels, on the champion models (run
    `emotion-ai run` first); no server needed."""
    from emotion_ai.photos.detection import FaceDetector

    inputs = collect_inputs(paths)
    models = ChampionModels(model_base_path or serving_dir(state_dir))
    detector = FaceDetector(detector_settings)
    several = len(inputs.photos) + len(inputs.videos) > 1
    timelines = timeline or (annotate if annotate and several else None) or state_dir / "timelines"
    results = [
        _or_error(photo, lambda p=photo: photo_result(p, detector, models, annotate, several))
        for photo in inputs.photos
    ] + [
        _or_error(
            video,
            lambda v=video: video_result(v, detector, models, fps, annotate, timelines, several),
        )
        for video in inputs.videos
    ]
    failed = [result for result in results if "error" in result]
    if as_json:
        console.print_json(json.dumps({"models": models.versions, "results": results}))
    else:
        _print_results(results)
    if failed:
        raise typer.Exit(1)


def _or_error(path: Path, analyse: Callable[[], dict]) -> dict:
    """`analyse()`'s result, or `{"path", "error"}` naming why the file could not be read."""
    try:
        return analyse()
    except UnreadableInput as error:
        return {"path": str(path), "error": str(error)}


def _print_results(results: list[dict]) -> None:
    for result in results:
        if "error" in result:
            console.print(Text(f"{result['path']}: {result['error']}", style="red"), soft_wrap=True)
        elif "faces" in result:
            console.print(face_table(Path(result["path"]), result["faces"]))
        else:
            console.print(
                f"{result['path']}: {result['faces_tracked']} faces tracked over "
                f"{result['samples']} samples; timeline {result['timeline']}"
            )
        if result.get("annotated"):
            console.print(f"  annotated: {result['annotated']}")


def photo_result(
    photo: Path, detector, models: ChampionModels, annotate: Path | None, several: bool
) -> dict:
    from emotion_ai.photos.analysis import analyze
    from emotion_ai.photos.drawing import annotate as draw
    from emotion_ai.photos.images import PhotoError, read_photo

    try:
        rgb = read_photo(photo.read_bytes())
    except (PhotoError, OSError) as error:
        raise UnreadableInput(str(error)) from error
    faces = analyze(rgb, detector, models)
    result = {"path": str(photo), "faces": faces}
    if annotate is not None:
        target = annotation_path(annotate, photo, ".png", several)
        draw(rgb, faces).save(target, format="PNG")
        result["annotated"] = str(target)
    return result


def video_result(
    video: Path,
    detector,
    models: ChampionModels,
    fps: float,
    annotate: Path | None,
    timelines: Path,
    several: bool,
) -> dict:
    from emotion_ai.photos.analysis import analyze
    from emotion_ai.photos.drawing import annotate as draw
    from emotion_ai.photos.video import AnnotatedVideo, VideoError, monitor, write_timeline

    writer = (
        AnnotatedVideo(annotation_path(annotate, video, ".mp4", several), fps) if annotate else None
    )

    def on_frame(rgb, faces, ids):
        if writer is not None:
            writer.write(np.asarray(draw(rgb, faces, [f"#{i}" for i in ids])))

    try:
        with console.status(f"{video}: analysing {fps:g} frames a second"):
            rows = monitor(video, fps, lambda rgb: analyze(rgb, detector, models), on_frame)
    except VideoError as error:
        raise UnreadableInput(str(error)) from error
    finally:
        if writer is not None:
            writer.close()
    timelines.mkdir(parents=True, exist_ok=True)
    csv_path, json_path, png_path = write_timeline(rows, timelines / f"{video.stem}.csv")
    result = {
        "path": str(video),
        "samples": len({row["time_s"] for row in rows}),
        "faces_tracked": len({row["face_id"] for row in rows}),
        "timeline": str(csv_path),
        "timeline_json": str(json_path),
        "timeline_plot": str(png_path),
    }
    if writer is not None:
        result["annotated"] = str(writer.path)
    return result
