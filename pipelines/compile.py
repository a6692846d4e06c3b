"""Compiles the pipeline to KFP IR YAML for Kubeflow Pipelines: `python -m pipelines.compile
OUT.yaml`."""

from __future__ import annotations

import sys
from pathlib import Path

from kfp import compiler

from pipelines.pipeline import build_pipeline


def compile_pipeline(output: Path, training_gpus: int = 0) -> Path:
    """Writes the IR YAML; `training_gpus` > 0 makes each training task ask for that many GPUs."""
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(training_gpus), package_path=str(output))
    return output


if __name__ == "__main__":
    print(compile_pipeline(Path(sys.argv[1] if len(sys.argv) > 1 else "emotion-ai-pipeline.yaml")))
