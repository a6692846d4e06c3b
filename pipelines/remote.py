"""Runs on a Kubeflow Pipelines cluster through `kfp.Client`: one run now, or a recurring run."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

import kfp
import yaml

from emotion_ai.settings import PIPELINE_SETTINGS
from emotion_ai.settings_json import (
    option_names,
    settings_from_json,
    settings_from_values,
    settings_to_json,
)
from pipelines.compile import compile_pipeline
from pipelines.pipeline import PIPELINE_NAME

DEFAULT_EXPERIMENT = PIPELINE_NAME
_CASTS = {
    "STRING": str,
    "NUMBER_INTEGER": int,
    "NUMBER_DOUBLE": float,
    "BOOLEAN": lambda text: text.lower() in {"1", "true", "yes"},
}


def declared_parameters(package: Path) -> dict[str, dict]:
    """Pipeline parameters (`parameterType`, `isOptional`) read from a compiled package."""
    return yaml.safe_load(package.read_text())["root"]["inputDefinitions"]["parameters"]


def parse_parameters(pairs: list[str], declared: dict[str, dict]) -> dict[str, object]:
    """`name=value` pairs cast to the declared types. A settings field's name (`epochs=3`, as the
    options of `emotion-ai run` name them) sets that field in the settings parameters that hold it,
    the others keeping their defaults; a whole settings parameter may be given as JSON instead.
    Unknown or missing required names and bad values are refused."""
    arguments: dict[str, object] = {}
    fields_given: dict[str, str] = {}
    settings_fields = set().union(*(option_names(cls) for cls in PIPELINE_SETTINGS.values()))
    for pair in pairs:
        name, separator, text = pair.partition("=")
        if not separator:
            raise ValueError(f"pipeline parameter {pair!r} is not of the form name=value")
        if name in settings_fields and name not in declared:
            fields_given[name] = text
        elif name in PIPELINE_SETTINGS:
            arguments[name] = settings_to_json(settings_from_json(PIPELINE_SETTINGS[name], text))
        elif name in declared:
            arguments[name] = _cast(name, text, declared[name]["parameterType"])
        else:
            raise ValueError(
                f"unknown pipeline parameter {name!r}; the pipeline takes: "
                f"{', '.join(sorted(declared))}, or any field of those settings (as `emotion-ai "
                "run --help` lists them)"
            )
    for name, cls in PIPELINE_SETTINGS.items():
        if fields_given.keys() & option_names(cls) and name not in arguments:
            chosen = settings_from_values(cls, fields_given, from_text=True)
            arguments[name] = settings_to_json(chosen)
    if missing := sorted(
        n for n, d in declared.items() if not d.get("isOptional") and n not in arguments
    ):
        raise ValueError(f"missing required pipeline parameter(s): {', '.join(missing)}")
    return arguments


def _cast(name: str, text: str, kind: str) -> object:
    try:
        return _CASTS[kind](text)
    except ValueError as error:
        raise ValueError(f"pipeline parameter {name!r} must be {kind}, not {text!r}") from error


def kfp_cron(expression: str) -> str:
    """KFP's cron has a leading seconds field: a five-field crontab line runs at second 0."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"cron expression {expression!r} must have 5 fields (or 6 with seconds first)"
        )
    return " ".join(["0", *fields] if len(fields) == 5 else fields)


class Cluster:
    """A Kubeflow Pipelines endpoint and the compiled pipeline submitted to it."""

    def __init__(self, host: str, namespace: str | None = None, training_gpus: int = 0) -> None:
        self.host, self.namespace, self.training_gpus = host, namespace, training_gpus

    def _client(self) -> kfp.Client:
        return kfp.Client(
            host=self.host, **({"namespace": self.namespace} if self.namespace else {})
        )

    def _compiled(self, scratch: str, parameters: list[str]) -> tuple[Path, dict[str, object]]:
        """The compiled package and its checked arguments (refused before the cluster is
        contacted)."""
        package = compile_pipeline(Path(scratch) / "emotion-ai-pipeline.yaml", self.training_gpus)
        return package, parse_parameters(parameters, declared_parameters(package))

    def submit(
        self,
        parameters: list[str],
        experiment: str = DEFAULT_EXPERIMENT,
        run_name: str | None = None,
    ) -> str:
        """Starts one run of the pipeline; returns its run id."""
        with tempfile.TemporaryDirectory() as scratch:
            package, arguments = self._compiled(scratch, parameters)
            result = self._client().create_run_from_pipeline_package(
                str(package),
                arguments=arguments,
                experiment_name=experiment,
                run_name=run_name
                or f"{PIPELINE_NAME} {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S}",
            )
        return result.run_id

    def schedule(
        self,
        parameters: list[str],
        cron: str,
        name: str,
        experiment: str = DEFAULT_EXPERIMENT,
        max_concurrency: int = 1,
    ) -> str:
        """Creates a recurring run (no catch-up of missed runs); returns its id."""
        cron = kfp_cron(cron)
        with tempfile.TemporaryDirectory() as scratch:
            package, arguments = self._compiled(scratch, parameters)
            client = self._client()
            experiment_id = client.create_experiment(experiment).experiment_id
            recurring = client.create_recurring_run(
                experiment_id,
                name,
                cron_expression=cron,
                max_concurrency=max_concurrency,
                no_catchup=True,
                params=arguments,
                pipeline_package_path=str(package),
            )
        return recurring.recurring_run_id
