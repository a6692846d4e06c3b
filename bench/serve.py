"""Serving throughput and latency: our server against the in-process model and `mlflow models
serve`.

One emotion model (the default ResNet, random weights: speed does not depend on them) is exported
to TF Serving's layout and logged to MLflow. Measured in the same run, one after another:
- ours: `emotion-ai serve --model-name emotion-ai-emotion`, with and without batching, at 1, 8 and
  16 clients;
- the headline ratio, in paired rounds: the SavedModel called in-process on batches of 16, our
  server at 16 clients, the in-process call again, and so on; each round's ratio is the server's
  throughput over the mean of the in-process runs on either side of it, and the median round is
  recorded (this machine's speed drifts by 20% within minutes, so only neighbours are compared);
- in-process, one face at a time (the latency that the server's p50 at 1 client adds to);
- MLflow: `mlflow models serve` of the logged model (`--env-manager local`).
Clients are threads posting TF Serving's row format `{"instances": [face]}`, one 96x96x1 face per
request on a kept-alive connection, as fast as answers come, for a fixed time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent / "tests")]

import numpy as np  # noqa: E402
from results_table import secondary_row, write_result  # noqa: E402
from servers import free_port, running, serve_command  # noqa: E402

CLIENT_COUNTS = (1, 8, 16)
IN_PROCESS_BATCH = 16
TARGET_VS_INPROCESS, TARGET_VS_MLFLOW, TARGET_ADDED_P50_MS = 0.6, 2.0, 3.0
MODEL = "emotion-ai-emotion"


def _percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share * 100))


def _summary(latencies_s: list[float], seconds: float) -> dict:
    return {
        "requests_per_s": len(latencies_s) / seconds,
        "p50_ms": _percentile(latencies_s, 0.5) * 1000,
        "p99_ms": _percentile(latencies_s, 0.99) * 1000,
        "requests": len(latencies_s),
    }


def load_clients(
    url: str, body: bytes, clients: int, seconds: float, allow_failures: bool = False
) -> dict:
    """`clients` threads posting `body` back to back for `seconds`, each on one kept-alive
    connection (`http.client`: a light load generator, since it shares the machine with the server);
    every answer must be HTTP 200, else it raises (or, with `allow_failures`, lists them)."""
    address = urllib.parse.urlsplit(url)
    latencies: list[float] = []
    failures: list[str] = []
    deadline = time.perf_counter() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                connection.request("POST", address.path, body, {"content-type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                if response.status != 200:
                    failures.append(f"{response.status}: {answer[:200]!r}")
                latencies.append(time.perf_counter() - started)
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures and not allow_failures:
        raise RuntimeError(f"{len(failures)} failed requests to {url}, e.g. {failures[0]}")
    return {**_summary(latencies, time.perf_counter() - started), "failures": failures}


def measure_server(url: str, body: bytes, seconds: float) -> dict[str, dict]:
    load_clients(url, body, 4, 2.0)
    return {str(clients): load_clients(url, body, clients, seconds) for clients in CLIENT_COUNTS}


class InProcessModel:
    """The exported SavedModel, called directly in this process."""

    def __init__(self, saved_model_dir: Path, face: np.ndarray) -> None:
        import tensorflow as tf

        self.saved_model = tf.saved_model.load(
            str(saved_model_dir)
        )  # kept: `serve` alone loses its variables
        self.single = tf.constant(face[np.newaxis])
        self.batch = tf.constant(np.repeat(face[np.newaxis], IN_PROCESS_BATCH, 0))

    def call_times(self, inputs, seconds: float) -> list[float]:
        """Seconds per call, calling the model back to back for `seconds` (after one untimed
        call)."""
        self.saved_model.serve(inputs).numpy()
        calls, deadline = [], time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            self.saved_model.serve(inputs).numpy()
            calls.append(time.perf_counter() - started)
        return calls

    def single_face(self, seconds: float) -> dict:
        calls = self.call_times(self.single, seconds)
        return {
            "single_p50_ms": _percentile(calls, 0.5) * 1000,
            "single_images_per_s": 1 / statistics.mean(calls),
        }

    def batch_images_per_s(self, seconds: float) -> float:
        return IN_PROCESS_BATCH / statistics.mean(self.call_times(self.batch, seconds))


def paired_rounds(
    url: str, body: bytes, model: InProcessModel, rounds: int, seconds: float
) -> list[dict]:
    """Our server at the most clients between in-process batch runs: each round's throughput and its
    ratio to the mean of the in-process runs on either side."""
    clients = max(CLIENT_COUNTS)
    in_process, measured = [model.batch_images_per_s(seconds)], []
    for _ in range(rounds):
        served = load_clients(url, body, clients, seconds)["requests_per_s"]
        in_process.append(model.batch_images_per_s(seconds))
        baseline = (in_process[-2] + in_process[-1]) / 2
        measured.append(
            {
                "served_faces_per_s": served,
                "in_process_batch_faces_per_s": baseline,
                "ratio": served / baseline,
            }
        )
    return measured


def median_round(rounds: list[dict]) -> dict:
    """The round whose ratio is the median (the lower middle one for an even count)."""
    return sorted(rounds, key=lambda measured: measured["ratio"])[(len(rounds) - 1) // 2]


def build_model(work: Path, width: int, depth: int) -> tuple[Path, str]:
    """The emotion model exported as version 1 under `work/serving`, and logged to MLflow in
    `work`."""
    import keras
    import mlflow

    from emotion_ai.modeling.networks import build_emotion_model
    from emotion_ai.modeling.training import log_keras_model
    from emotion_ai.release.model_repository import export_saved_model
    from emotion_ai.settings import ResNetConfig

    keras.utils.set_random_seed(0)
    model = build_emotion_model(ResNetConfig.scaled(width, depth))
    export_saved_model(model, work / "serving", MODEL, 1)
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    mlflow.set_experiment("bench-serve")
    with mlflow.start_run():
        model_uri = log_keras_model(model, np.zeros((1, 96, 96, 1), np.float32), MODEL).model_uri
    return work / "serving", model_uri


@contextmanager
def ours(base: Path, port: int, log: Path, batching: bool):
    command = serve_command(
        base,
        port,
        "--model-name",
        MODEL,
        "--request-sample-rate",
        "0",
        "--enable-batching" if batching else "--no-enable-batching",
    )
    with running(command, f"http://127.0.0.1:{port}/v1/models/{MODEL}", log):
        yield f"http://127.0.0.1:{port}/v1/models/{MODEL}:predict"


@contextmanager
def mlflow_serve(work: Path, model_uri: str, port: int, log: Path):
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
    }  # its uvicorn
    with running(command, f"http://127.0.0.1:{port}/ping", log, environment):
        yield f"http://127.0.0.1:{port}/invocations"


def measure(width: int, depth: int, seconds: float, rounds: int) -> dict:
    face = np.random.default_rng(0).integers(0, 256, (96, 96, 1)).astype(np.float32)
    body = json.dumps({"instances": [face.astype(int).tolist()]}).encode()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        work = Path(scratch)
        base, model_uri = build_model(work, width, depth)
        model = InProcessModel(base / MODEL / "1", face)
        results = {"in_process": model.single_face(seconds)}
        for name, batching in (("ours", True), ("ours_unbatched", False)):
            with ours(base, free_port(), work / f"{name}.log", batching) as url:
                results[name] = measure_server(url, body, seconds)
                if batching:
                    results["paired_rounds"] = paired_rounds(url, body, model, rounds, seconds / 2)
        with mlflow_serve(work, model_uri, free_port(), work / "mlflow.log") as url:
            results["mlflow"] = measure_server(url, body, seconds)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--width", type=int, default=16, help="ResNet width (the default model: 16)"
    )
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help="measuring time per client count (half of it per paired-round run)",
    )
    parser.add_argument(
        "--rounds", type=int, default=7, help="paired rounds of in-process and server runs"
    )
    args = parser.parse_args()
    measured = measure(args.width, args.depth, args.seconds, args.rounds)
    busiest = str(max(CLIENT_COUNTS))
    headline = median_round(measured["paired_rounds"])
    ours16, mlflow16 = (
        measured["ours"][busiest]["requests_per_s"],
        measured["mlflow"][busiest]["requests_per_s"],
    )
    added_p50 = measured["ours"]["1"]["p50_ms"] - measured["in_process"]["single_p50_ms"]
    details = {
        "ratio_vs_inprocess": headline["ratio"],
        "ratio_vs_inprocess_rounds": [
            measured_round["ratio"] for measured_round in measured["paired_rounds"]
        ],
        "ratio_vs_mlflow": ours16 / mlflow16,
        "added_p50_ms_1_client": added_p50,
        "targets": {
            "ratio_vs_inprocess": TARGET_VS_INPROCESS,
            "ratio_vs_mlflow": TARGET_VS_MLFLOW,
            "added_p50_ms_1_client": TARGET_ADDED_P50_MS,
        },
        "clients": list(CLIENT_COUNTS),
        "measured": measured,
        "width": args.width,
        "depth": args.depth,
        "request": "one 96x96x1 face as JSON {'instances': [...]}",
    }
    rows = [
        secondary_row(
            "serving vs mlflow models serve",
            value=ours16,
            baseline=mlflow16,
            target=TARGET_VS_MLFLOW,
            unit=f"req/s at {busiest} clients",
        ),
        secondary_row(
            "serving p50 at 1 client (target: ≤ 3 ms added)",
            value=measured["ours"]["1"]["p50_ms"],
            baseline=measured["in_process"]["single_p50_ms"],
            target=f"+{TARGET_ADDED_P50_MS:g} ms",
            unit="ms",
            lower_is_better=True,
        ),
    ]
    command = (
        f"uv run python bench/serve.py --width {args.width} --depth {args.depth} --seconds "
        f"{args.seconds:g} --rounds {args.rounds}"
    )
    result = write_result(
        "serving",
        value=headline["served_faces_per_s"],
        baseline=headline["in_process_batch_faces_per_s"],
        target=TARGET_VS_INPROCESS,
        unit=f"faces/s at {busiest} clients (median of paired rounds)",
        command=command,
        details={**details, "table_rows": rows},
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
