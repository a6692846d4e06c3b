"""Steps: the pipeline's step functions (ingest, validate, train, evaluate, register), the files
they exchange, their content-addressed cache, and MLflow tracking (a parent run, a nested run per
step).

May import: data, modeling, release and the shared modules. Never serving, monitoring, the CLI, or
the top-level `pipelines` and `components` (which call into steps, not the other way round).
"""
