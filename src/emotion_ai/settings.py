"""Every setting of a pipeline run, as typed dataclasses passed down (never read from globals).

Each default is stated here once. The CLI options, the KFP pipeline's parameters, the components and
the generated MLproject read them from these classes (`TrainSettings.epochs` is the default of
`--epochs`); `tests/test_settings.py` fails when any of them disagrees.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

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


@dataclass(frozen=True)
class SourceSettings:
    """Where the two data sets come from: a path, s3:// or https:// URI each; empty means synthetic
    faces in the exact Kaggle format, `synthetic_rows` of them."""

    keypoints_source: str = ""
    fer_source: str = ""
    synthetic_rows: int = 600
    seed: int = 0
    detect_faces: bool = False
    """An FER source that is a folder of class folders holds ordinary photos: each photo's one face
    is found, aligned and cropped (photos with no face or several are left out and reported)."""


@dataclass(frozen=True)
class SplitSettings:
    """How rows are split: fractions of validation and test rows, or FER's own `Usage` column."""

    val_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0
    use_fer_usage: bool = False
    """FER's Training / PublicTest / PrivateTest rows become train / val / test."""


@dataclass(frozen=True)
class ValidationSettings:
    """Thresholds of the content suites."""

    min_rows: int = 1
    min_rows_per_class: int = 1
    max_duplicate_rate: float = 0.1
    """Share of rows whose image is byte-identical to an earlier row (FER2013 has about 5%)."""


@dataclass(frozen=True)
class ResNetConfig:
    """Size of a residual network: a strided stem, then stages of one convolution block
    followed by `identity_blocks` identity blocks."""

    stem_filters: int = 16
    stage_filters: tuple[int, ...] = (16, 32, 64)
    identity_blocks: int = 1
    dropout: float = 0.2

    def __post_init__(self) -> None:
        narrowest = min(self.stem_filters, *self.stage_filters)
        if narrowest < MIN_FILTERS_WITH_ONEDNN and os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0":
            raise ValueError(
                f"network width {narrowest} is below {MIN_FILTERS_WITH_ONEDNN} filters: "
                "TensorFlow's oneDNN CPU kernels crash training such narrow convolutions; use a "
                "wider network or set TF_ENABLE_ONEDNN_OPTS=0"
            )

    @classmethod
    def scaled(cls, width: int, depth: int, stages: int = 3) -> ResNetConfig:
        """`stages` stages doubling from `width` filters, each with `depth` identity blocks."""
        return cls(
            stem_filters=width,
            stage_filters=tuple(width * 2**i for i in range(stages)),
            identity_blocks=depth,
        )


DEFAULT_WIDTH = ResNetConfig.stem_filters
"""Filters of the first ResNet stage (`--width`)."""
DEFAULT_DEPTH = ResNetConfig.identity_blocks
"""Identity blocks per ResNet stage (`--depth`)."""


@dataclass(frozen=True)
class AugmentSettings:
    """Random changes of training faces that keep their labels true (keypoints move with the
    face)."""

    rotation_degrees: float = 10.0
    shift_px: float = 4.0
    scale: float = 0.08
    """Faces are scaled by 1 +- this."""
    brightness: float = 20.0
    """Pixel values are offset by +- this."""
    contrast: float = 0.2


LR_SCHEDULES = ("plateau", "cosine")
RECIPE_FIELDS = (
    "lr_schedule",
    "ema_momentum",
    "label_smoothing",
    "mixup_alpha",
    "random_erasing",
    "dropout",
    "flip_test_time",
)
"""The training recipe's options that the CLI and the pipeline pass through."""
EMOTION_ONLY_FIELDS = ("label_smoothing", "mixup_alpha", "random_erasing", "dropout")


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation of one model."""

    epochs: int = 5
    batch_size: int = 32
    learning_rate: float = 2e-3
    seed: int = 0
    """The first weights, the shuffling and every augmentation draw follow it: on the same machine
    and libraries, the same seed trains the same model."""
    early_stopping_patience: int = 5
    balance_classes: bool = True
    """Weight emotion classes inversely to their frequency (rare Disgust counts more)."""
    lr_schedule: str = "cosine"
    """`cosine`: a linear warm-up over `warmup_epochs`, then a cosine decay to zero at the last
    epoch; `plateau`: halve the learning rate when validation stalls. Over 3 seeds on real FER
    faces cosine gave 0.827 +- 0.004 test accuracy, plateau 0.818 +- 0.016 (bench/quality.py, one
    draw each, measured before training was repeatable)."""
    warmup_epochs: int = 3
    ema_momentum: float = 0.0
    """Keep an exponential moving average of the weights, validated and kept at the end (0: off;
    e.g. 0.99)."""
    label_smoothing: float = 0.0
    """Emotion: the true class's target is 1 - this, the rest spread over the other classes."""
    mixup_alpha: float = 0.0
    """Emotion: each training face is blended with another of its batch, and their targets alike,
    by a Beta(alpha, alpha) weight (0: off)."""
    random_erasing: float = 0.0
    """Emotion: the share of training faces with a random rectangle (2 to 33 % of the face)
    replaced by noise (random erasing, Zhong et al. 2020; 0: off)."""
    dropout: float = 0.0
    """Emotion: the share of the pooled features dropped before the classifier while training
    (0: off). Over 3 seeds on real FER faces at width 32, 0.5 gave 0.879 +- 0.007 test accuracy
    with flip averaging against 0.861 +- 0.018 off with the validation faces trained on, and
    0.851 +- 0.012 against 0.849 +- 0.023 with them held out (bench/quality.py)."""
    flip_test_time: bool = False
    """The trained model averages its answer for each face with its answer for the mirror image
    (keypoints mirrored back), so evaluation and serving both see the average."""
    network: ResNetConfig = field(default_factory=ResNetConfig)
    augment: AugmentSettings = field(default_factory=AugmentSettings)

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule {self.lr_schedule!r} is not one of {LR_SCHEDULES}")
        for name in ("ema_momentum", "label_smoothing", "dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} {getattr(self, name)} must be at least 0 and below 1")
        if not 0.0 <= self.random_erasing <= 1.0:
            raise ValueError(f"random_erasing {self.random_erasing} must be a share from 0 to 1")
        if self.mixup_alpha < 0.0:
            raise ValueError(f"mixup_alpha {self.mixup_alpha} must be 0 (off) or positive")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs {self.warmup_epochs} must be 0 or more")

    @classmethod
    def scaled(
        cls,
        epochs: int = epochs,
        batch_size: int = batch_size,
        learning_rate: float = learning_rate,
        seed: int = seed,
        width: int = DEFAULT_WIDTH,
        depth: int = DEFAULT_DEPTH,
        **recipe: object,
    ) -> TrainSettings:
        """Settings of a network `width` filters wide with `depth` identity blocks per stage, and
        any of the `RECIPE_FIELDS`."""
        return cls(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            network=ResNetConfig.scaled(width, depth),
            **recipe,
        )

    def as_params(self) -> dict[str, object]:
        """Flat key/value pairs for MLflow params."""
        params = {k: v for k, v in asdict(self).items() if k not in ("network", "augment")}
        params.update({f"network.{k}": v for k, v in asdict(self.network).items()})
        params.update({f"augment.{k}": v for k, v in asdict(self.augment).items()})
        return params


@dataclass(frozen=True)
class GateSettings:
    """When a challenger may replace the champion: absolute floors and a paired test."""

    max_keypoint_rmse_px: float = 12.0
    min_emotion_accuracy: float = 0.3
    significance: float = 0.05
    min_keypoint_improvement_px: float = 0.0
    min_emotion_improvement: float = 0.0
    bootstrap_samples: int = 2000
    seed: int = 0


@dataclass(frozen=True)
class ReleaseSettings:
    """What publishing keeps."""

    keep_versions: int = 3
    """Exported versions kept per model (the champion and labelled versions always)."""
    latency_budget_ms: float | None = 1000.0
    """The pre-promotion infrastructure check (TFX InfraValidator's idea): before the alias moves,
    the candidate export is loaded by the serving code in a separate process and must answer its
    warm-up requests as the trained model does, the slowest within this many milliseconds once
    warm. Generous, so that only a broken or pathologically slow export fails; None skips the
    check."""


@dataclass(frozen=True)
class BatchSettings:
    """TF Serving's batching parameters that apply here."""

    max_batch_size: int = 32
    batch_timeout_micros: int = 3000
    """Only while another call runs: a request to an idle model runs at once."""
    num_batch_threads: int = 2


@dataclass(frozen=True)
class DetectorSettings:
    """Which detected faces count (see `emotion_ai.photos.detection`)."""

    min_face_size: int = 40
    """Smallest face kept, in photo pixels (the box's shorter side)."""
    min_score: float = 0.8
    """Smallest detection score kept (MTCNN's last stage, 0..1; MTCNN itself keeps nothing under
    0.8). bench/faces: 0.9 found 0.84 of the real faces of 60 px and more, 0.8 found 0.87, with the
    same false detections."""

    def __post_init__(self) -> None:
        if self.min_face_size < 1 or not 0.0 <= self.min_score <= 1.0:
            raise ValueError("min_face_size must be at least 1 and min_score in 0..1")


ENGINES = ("openvino", "tensorflow")
"""The inference engines the server can run a SavedModel on."""


@dataclass(frozen=True)
class ServingOptions:
    """How many versions stay loaded (TF Serving's `latest` version policy) and how requests are
    batched (None: each request runs alone)."""

    num_versions: int = 1
    batching: BatchSettings | None = field(default_factory=BatchSettings)
    max_refresh_failure_seconds: float = 120.0
    """Readiness fails once reading the model base path has failed for longer than this."""
    engine: str = "openvino"
    """What runs the SavedModels: `openvino` (falls back to `tensorflow` where it fails to load or
    disagrees with TensorFlow on the warm-up requests) or `tensorflow`."""
    warmup: bool = True
    """Replay each version's warm-up requests before it is served (TF Serving's
    --enable_model_warmup)."""
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    """The face detector of `emotion-ai-faces`."""

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")


@dataclass(frozen=True)
class RequestLimits:
    """What one request may ask of the server. Memory stays bounded: at most `decode_workers`
    requests decode images at once, each image at most `max_image_pixels` (about 4 bytes a pixel
    while decoding)."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_instances: int = 256
    """Faces or photos in one request."""
    max_image_pixels: int = 40_000_000
    """Pixels of one encoded image (a 40-megapixel photo), checked before it is decoded."""
    max_request_pixels: int = 120_000_000
    """Pixels of all the images of one request together."""
    body_timeout_seconds: float = 30.0
    """A body not received whole within this time gets a 408."""
    decode_workers: int = 2
    """Threads that parse JSON and decode images, off the event loop."""
