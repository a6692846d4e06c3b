"""Every setting of a pipeline run, as typed dataclasses passed down (never read from globals).

Each default is stated here once. The CLI options, the KFP pipeline's parameters, the components and
the generated MLproject read them from these classes (`TrainSettings.epochs` is the default of
`--epochs`); `tests/test_settings.py` fails when any of them disagrees.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

KEYPOINT_MODEL = "emotion-ai-keypoints"
EMOTION_MODEL = "emotion-ai-emotion"
COMBINED_MODEL = "emotion-ai"
"""The registered and served models; `emotion-ai` answers both for one face."""
PHOTO_MODEL = "emotion-ai-faces"
"""Photos in, every face found with its keypoints and emotion out (see `emotion_ai.photos`)."""
DEFAULT_EXPERIMENT = "emotion-ai"
"""The MLflow experiment (and KFP experiment) runs go to."""

MIN_FILTERS_WITH_ONEDNN = 16
"""TF 2.21's oneDNN CPU kernels crash (segfault or double free) when training convolutions of 12 or
fewer
filters; narrower networks need TF_ENABLE_ONEDNN_OPTS=0 (about 1.5x slower training)."""


def option(default: Any, help: str, **metadata: object) -> Any:
    """A settings field that is also an option of the commands that take its class (`--name`),
    with its help text; `choices` limits its values, `only="emotion"` (or `"keypoints"`) marks a
    field the other model ignores."""
    return field(default=default, metadata={"help": help, **metadata})


@dataclass(frozen=True)
class SourceSettings:
    """Where the two data sets come from: a path, s3:// or https:// URI each; empty means synthetic
    faces in the exact Kaggle format, `synthetic_rows` of them."""

    keypoints_source: str = option(
        "",
        "FKD training.csv: path, s3:// or https:// (default: synthetic faces).",
        flag="keypoints-csv",
    )
    fer_source: str = option(
        "",
        "fer2013.csv (emotion,pixels,Usage): path, s3:// or https:// (default: synthetic faces).",
        flag="fer-csv",
    )
    synthetic_rows: int = option(1500, "Rows of each synthetic data set, when no CSV is given.")
    seed: int = option(
        0,
        "Random seed of whatever the command draws (generated data, the split, first weights, "
        "shuffling, augmentation): on the same machine the same seed gives the same result.",
    )
    detect_faces: bool = option(
        False,
        "The FER source is a folder of ordinary photos: find, align and crop each one's face "
        "(photos with no face or several are left out and reported in the ingest run).",
    )


@dataclass(frozen=True)
class SplitSettings:
    """How rows are split: fractions of validation and test rows, or FER's own `Usage` column."""

    val_fraction: float = option(
        0.2,
        "Share of rows held out for validation (early stopping, tuning); 0 trains on them too, "
        "for all --epochs.",
    )
    test_fraction: float = option(0.2, "Share of rows held out for the test figures.")
    seed: int = option(0, "Seed of the split (--seed sets it).")
    use_fer_usage: bool = option(
        False,
        "Split FER rows by their Usage column: Training, PublicTest, PrivateTest are train, "
        "validation, test. Without PrivateTest rows, PublicTest is the test split and validation "
        "is --val-fraction of Training.",
        flag="split-by-usage",
    )


@dataclass(frozen=True)
class ValidationSettings:
    """Thresholds of the content suites."""

    min_rows: int = option(1, "Fewest rows a data file may have.")
    min_rows_per_class: int = option(1, "Fewest rows any emotion may have.")
    max_duplicate_rate: float = option(
        0.1,
        "Largest share of rows whose image is byte-identical to an earlier row (FER2013 has "
        "about 5%).",
    )
    max_bad_row_share: float = option(
        0.001,
        "Share of rows that may fail a row check (a blank image, a label out of range, a wrong "
        "pixel count, a keypoint outside the face) and be set aside, named, instead of failing "
        "the run; 0: any bad row is fatal.",
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_bad_row_share < 1.0:
            raise ValueError(
                f"max_bad_row_share {self.max_bad_row_share} must be at least 0 and below 1"
            )


@dataclass(frozen=True)
class ResNetConfig:
    """Size of a residual network: a strided stem of `width` filters, then `stages` stages doubling
    from `width` filters, each one convolution block followed by `depth` identity blocks."""

    width: int = option(16, "Filters of the first ResNet stage (doubling per stage).")
    depth: int = option(1, "Identity blocks per ResNet stage.")
    stages: int = option(3, "ResNet stages (each halves the size and doubles the filters).")
    feature_dropout: float = option(
        0.2, "The share of the pooled features dropped while training (both models; 0: off)."
    )
    input_pool: int = option(
        2,
        "Faces are averaged over blocks of this many pixels a side before the stem: 2 computes "
        "a 96x96 face at 48x48, FER's own size, for about a quarter of the work.",
    )

    def __post_init__(self) -> None:
        if self.input_pool not in (1, 2, 3, 4):
            raise ValueError(f"input_pool {self.input_pool} must be 1 (off), 2, 3 or 4")
        if not 0.0 <= self.feature_dropout < 1.0:
            raise ValueError(f"feature_dropout {self.feature_dropout} must be in 0..1")
        if self.width < MIN_FILTERS_WITH_ONEDNN and os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0":
            raise ValueError(
                f"network width {self.width} is below {MIN_FILTERS_WITH_ONEDNN} filters: "
                "TensorFlow's oneDNN CPU kernels crash training such narrow convolutions; use a "
                "wider network or set TF_ENABLE_ONEDNN_OPTS=0"
            )

    @property
    def stem_filters(self) -> int:
        return self.width

    @property
    def stage_filters(self) -> tuple[int, ...]:
        return tuple(self.width * 2**index for index in range(self.stages))


@dataclass(frozen=True)
class AugmentSettings:
    """Random changes of training faces that keep their labels true (keypoints move with the
    face)."""

    rotation_degrees: float = option(10.0, "Training faces are rotated by up to this many degrees.")
    shift_px: float = option(4.0, "Training faces are shifted by up to this many pixels.")
    scale: float = option(0.08, "Training faces are scaled by 1 +- this.")
    brightness: float = option(20.0, "Training pixel values are offset by +- this.")
    contrast: float = option(0.2, "Training faces' contrast is scaled by 1 +- this.")


TRAINED_MODELS = ("keypoints", "emotion")
"""The two models a training step trains (`TrainSettings.for_model`)."""
LR_SCHEDULES = ("plateau", "cosine")
KEYPOINT_HEADS = ("pooled", "heatmap")
PRECISIONS = ("auto", "float32")
ENGINES = ("openvino", "tensorflow")
"""The inference engines the server can run a SavedModel on."""


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation of one model."""

    epochs: int = option(5, "Training epochs of each model.")
    keypoint_epochs: int = option(
        0,
        "Keypoints: training epochs of the keypoint model instead of --epochs (0: --epochs).",
        only="keypoints",
    )
    batch_size: int = option(32, "Faces per training step.")
    learning_rate: float = option(2e-3, "Adam's (peak) learning rate.")
    seed: int = option(
        0,
        "Seed of the first weights, the shuffling and every augmentation draw (--seed sets it): on "
        "the same machine and libraries, the same seed trains the same model.",
    )
    early_stopping_patience: int = option(
        5, "Epochs without a better validation loss before training stops."
    )
    balance_classes: bool = option(
        True,
        "Emotion: weight classes inversely to their frequency (rare Disgust counts more).",
        only="emotion",
    )
    class_weight_power: float = option(
        1.0,
        "Emotion: the balanced class weights are raised to this power, from 0 to 1: 1 weighs "
        "every class alike, a smaller power leans back toward the faces' own frequencies.",
        only="emotion",
    )
    lr_schedule: str = option(
        "cosine",
        "cosine: warm up over --warmup-epochs, then decay to zero at the last epoch; plateau: "
        "halve the learning rate when validation stalls.",
        choices=LR_SCHEDULES,
    )
    warmup_epochs: int = option(1, "Epochs of the cosine schedule's linear warm-up.")
    weight_decay: float = option(
        0.0,
        "Decoupled weight decay (AdamW): each step every weight shrinks by this times the "
        "step's learning rate (e.g. 0.05; 0: off).",
    )
    ema_momentum: float = option(
        0.0,
        "Keep a moving average of the weights, validated and kept at the end (e.g. 0.99; 0: off).",
    )
    label_smoothing: float = option(
        0.0,
        "Emotion: the true class's target is 1 - this, the rest spread over the others.",
        only="emotion",
    )
    mixup_alpha: float = option(
        0.0,
        "Emotion: blend each training face with another of its batch, targets alike, by a "
        "Beta(alpha, alpha) weight (0: off).",
        only="emotion",
    )
    random_erasing: float = option(
        0.0,
        "Emotion: the share of training faces with a random rectangle replaced by noise (0: off).",
        only="emotion",
    )
    head_dropout: float = option(
        0.0,
        "Emotion: the share of the pooled features dropped again right before the classifier, "
        "after --feature-dropout (0: no such layer).",
        only="emotion",
    )
    keypoint_head: str = option(
        "pooled",
        "Keypoints: pooled: the coordinates regressed from the pooled features; heatmap: a map "
        "per keypoint at a finer grid (the last stage upsampled onto the one before), each "
        "keypoint at its map's softmax-weighted mean position.",
        choices=KEYPOINT_HEADS,
        only="keypoints",
    )
    precision: str = option(
        "auto",
        "auto: mixed bfloat16 on CPUs that compute it (AMX, AVX512-BF16), mixed float16 on GPUs, "
        "float32 elsewhere (weights stay float32; the saved model computes in float32); float32: "
        "always.",
        choices=PRECISIONS,
    )
    flip_test_time: bool = option(
        False,
        "Both models average each face's answer with its mirror image's (keypoints mirrored "
        "back), in evaluation and serving, for twice the compute per face.",
    )
    network: ResNetConfig = field(default_factory=ResNetConfig)
    augment: AugmentSettings = field(default_factory=AugmentSettings)

    def __post_init__(self) -> None:
        for item in fields(self):
            choices = item.metadata.get("choices")
            if choices and getattr(self, item.name) not in choices:
                raise ValueError(
                    f"{item.name} {getattr(self, item.name)!r} is not one of {choices}"
                )
        for name in ("ema_momentum", "label_smoothing", "head_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} {getattr(self, name)} must be at least 0 and below 1")
        if not 0.0 <= self.class_weight_power <= 1.0:
            raise ValueError(f"class_weight_power {self.class_weight_power} must be from 0 to 1")
        if not 0.0 <= self.random_erasing <= 1.0:
            raise ValueError(f"random_erasing {self.random_erasing} must be a share from 0 to 1")
        for name in ("mixup_alpha", "weight_decay"):
            if getattr(self, name) < 0.0:
                raise ValueError(f"{name} {getattr(self, name)} must be 0 (off) or positive")
        for name in ("warmup_epochs", "keypoint_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} {getattr(self, name)} must be 0 or more")

    def for_model(self, model: str) -> TrainSettings:
        """These settings for `model` ("keypoints" or "emotion"): the other model's own fields at
        their defaults (this one ignores them, and its run and cache key should not depend on
        them), and the keypoint model's `keypoint_epochs` made its `epochs`."""
        if model not in TRAINED_MODELS:
            raise ValueError(f"model {model!r} is not one of {TRAINED_MODELS}")
        own = replace(
            self,
            **{f.name: f.default for f in fields(self) if f.metadata.get("only", model) != model},
        )
        return replace(own, epochs=own.keypoint_epochs or own.epochs, keypoint_epochs=0)

    def as_params(self) -> dict[str, object]:
        """Flat key/value pairs for MLflow params."""
        params = {k: v for k, v in asdict(self).items() if k not in ("network", "augment")}
        params.update({f"network.{k}": v for k, v in asdict(self.network).items()})
        params.update({f"augment.{k}": v for k, v in asdict(self.augment).items()})
        return params


@dataclass(frozen=True)
class GateSettings:
    """When a challenger may replace the champion: absolute floors and a paired test."""

    max_keypoint_rmse_px: float = option(5.0, "Promotion floor: the keypoint test RMSE in px.")
    min_emotion_accuracy: float = option(0.5, "Promotion floor: the emotion test accuracy.")
    significance: float = option(0.05, "Level of the paired test against the champion.")
    min_keypoint_improvement_px: float = option(
        0.0, "Least per-face RMSE gain over the champion (px) the paired bootstrap must show."
    )
    min_emotion_improvement: float = option(
        0.0, "Least accuracy gain over the champion a challenger must show."
    )
    bootstrap_samples: int = option(2000, "Resamples of the paired bootstrap intervals.")
    bootstrap_seed: int = option(0, "Seed of the bootstrap resampling.")


@dataclass(frozen=True)
class ReleaseSettings:
    """What publishing keeps."""

    keep_versions: int = option(
        3, "Exported versions kept per model (the champion and labelled versions always)."
    )
    latency_budget_ms: float | None = option(
        1000.0,
        "The pre-promotion infrastructure check: the candidate export, loaded by the serving code "
        "in a process of its own, must answer its warm-up requests as the trained model does, the "
        "slowest within this many ms once warm (none: no check).",
    )


PIPELINE_SETTINGS = {
    "sources": SourceSettings,
    "split": SplitSettings,
    "validation": ValidationSettings,
    "training": TrainSettings,
    "gate": GateSettings,
    "release": ReleaseSettings,
}
"""The settings a pipeline run takes, each crossing to its steps as one typed parameter."""


def _require_at_least(settings: object, minimum: float, *names: str) -> None:
    """Refuses `settings` when one of the fields `names` is below `minimum`, naming it."""
    for name in names:
        if getattr(settings, name) < minimum:
            raise ValueError(f"{name} {getattr(settings, name)} must be at least {minimum}")


@dataclass(frozen=True)
class BatchSettings:
    """TF Serving's batching parameters that apply here."""

    max_batch_size: int = option(32, "Most faces in one batched call.")
    batch_timeout_micros: int = option(
        3000,
        "How long a batch waits to fill up while another call runs (a request to an idle model "
        "runs at once).",
    )
    num_batch_threads: int = option(
        2, "Batched model calls run at once: while one batch computes, the next one gathers."
    )

    def __post_init__(self) -> None:
        _require_at_least(self, 1, "max_batch_size", "num_batch_threads")
        _require_at_least(self, 0, "batch_timeout_micros")


@dataclass(frozen=True)
class DetectorSettings:
    """Which detected faces count (see `emotion_ai.photos.detection`)."""

    min_face_size: int = option(
        40, "Smallest face found, in photo pixels (the box's shorter side)."
    )
    min_score: float = option(0.8, "Smallest face detection score kept (0..1).")
    """MTCNN's last stage; MTCNN itself keeps nothing under 0.8. bench/faces: 0.9 found 0.84 of the
    real faces of 60 px and more, 0.8 found 0.87, with the same false detections."""

    def __post_init__(self) -> None:
        if self.min_face_size < 1 or not 0.0 <= self.min_score <= 1.0:
            raise ValueError("min_face_size must be at least 1 and min_score in 0..1")


@dataclass(frozen=True)
class ServingOptions:
    """Which versions stay loaded, what runs them, and how requests are batched."""

    num_versions: int = option(
        1,
        "Newest versions kept loaded per model (TF Serving's `latest` version policy); versions "
        "named in <model>/labels.json (see `emotion-ai label`) are loaded too.",
    )
    enable_batching: bool = option(
        True, "Join concurrent requests into one model call (TF Serving's --enable_batching)."
    )
    batching: BatchSettings = field(default_factory=BatchSettings)
    max_refresh_failure_seconds: float = option(
        120.0, "Readiness (/readyz) fails once reading the model base path has failed this long."
    )
    engine: str = option(
        "openvino",
        "What runs the SavedModels: openvino (used where it loads and agrees with TensorFlow on "
        "the warm-up requests; otherwise TensorFlow, with the reason logged) or tensorflow.",
        choices=ENGINES,
    )
    warmup: bool = option(
        True,
        "Replay each version's assets.extra/tf_serving_warmup_requests before serving it "
        "(TF Serving's --enable_model_warmup).",
        flag="enable-model-warmup",
    )
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    """The face detector of `emotion-ai-faces`."""

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        _require_at_least(self, 1, "num_versions")
        _require_at_least(self, 0, "max_refresh_failure_seconds")

    @property
    def batches(self) -> BatchSettings | None:
        """The batching settings when requests are batched, else None."""
        return self.batching if self.enable_batching else None


@dataclass(frozen=True)
class RequestLimits:
    """What one request may ask of the server. Memory stays bounded: at most `decode_workers`
    requests decode images at once, each image at most `max_image_pixels` (about 4 bytes a pixel
    while decoding)."""

    max_body_bytes: int = option(16 * 1024 * 1024, "Largest request body (413 above).")
    max_instances: int = option(256, "Most faces or photos in one request (413 above).")
    max_image_pixels: int = option(
        40_000_000, "Largest image, in pixels, checked before decoding (413)."
    )
    max_request_pixels: int = option(
        120_000_000, "Most image pixels in one request together (413)."
    )
    body_timeout_seconds: float = option(30.0, "Time a request body has to arrive whole (408).")
    decode_workers: int = 2
    """Threads that parse JSON and decode images, off the event loop."""

    def __post_init__(self) -> None:
        _require_at_least(
            self, 1, "max_body_bytes", "max_instances", "max_image_pixels", "max_request_pixels"
        )
        _require_at_least(self, 0.001, "body_timeout_seconds")
        _require_at_least(self, 1, "decode_workers")
