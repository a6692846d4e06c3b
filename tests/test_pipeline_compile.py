"""The compiled KFP IR: six tasks, the right dependencies, parameters and images."""

import yaml

from pipelines.compile import compile_pipeline

STEPS = {"ingest", "validate", "train-keypoints", "train-emotion", "evaluate", "register"}


def test_compiled_pipeline_chains_the_six_steps(tmp_path):
    spec = yaml.safe_load(compile_pipeline(tmp_path / "pipeline.yaml").read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == STEPS
    needs = {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()}
    assert needs["validate"] == {"ingest"}
    assert "validate" in needs["train-keypoints"] and "validate" in needs["train-emotion"]
    assert not needs["train-keypoints"] & {"train-emotion"} and not needs["train-emotion"] & {
        "train-keypoints"
    }
    assert {"train-keypoints", "train-emotion"} <= needs["evaluate"]
    assert "evaluate" in needs["register"]
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert {"tracking_uri", "model_base_path", "sources", "split", "training", "gate"} <= set(
        parameters
    )
    images = {
        executor["container"]["image"] for executor in spec["deploymentSpec"]["executors"].values()
    }
    assert images == {"emotion-ai:0.1.0"}


def test_tasks_carry_resources_retries_and_caching_and_training_may_ask_for_gpus(tmp_path):
    spec = yaml.safe_load(compile_pipeline(tmp_path / "pipeline.yaml", training_gpus=2).read_text())
    tasks = spec["root"]["dag"]["tasks"]
    cached = {name for name, task in tasks.items() if task["cachingOptions"].get("enableCache")}
    assert cached == {"validate", "train-keypoints", "train-emotion"}
    retries = {
        name: task.get("retryPolicy", {}).get("maxRetryCount", 0) for name, task in tasks.items()
    }
    assert retries["ingest"] >= 1 and retries["register"] == 0
    executors = spec["deploymentSpec"]["executors"]
    resources = {
        name.removeprefix("exec-"): executor["container"]["resources"]
        for name, executor in executors.items()
    }
    assert all(
        r["resourceCpuLimit"] and r["resourceMemoryLimit"].endswith("Gi")
        for r in resources.values()
    )
    gpus = {
        name: r["accelerator"]["resourceCount"]
        for name, r in resources.items()
        if "accelerator" in r
    }
    assert gpus == {"train-keypoints": "2", "train-emotion": "2"}
    assert "cache_root" in spec["root"]["inputDefinitions"]["parameters"]
