"""Serving throughput and latency, all in one run: our server on both engines and both protocols,
against TensorFlow in-process, `mlflow models serve` and BentoML.

One emotion model (the default ResNet, random weights: speed does not depend on them) is exported
to TF Serving's layout (with its warm-up requests) and logged to MLflow. Measured one after another:
- ours: `emotion-ai serve --model-name emotion-ai-emotion` with `--engine openvino` and `--engine
  tensorflow`, each over REST and over gRPC (TF Serving's `PredictionService.Predict`), at 1, 8 and
  16 clients;
- the headline ratio, in paired rounds: the SavedModel called in-process by TensorFlow on batches of
  16, our server (OpenVINO, REST) at 16 clients, the in-process call again, and so on; each round's
  ratio is the server's throughput over the mean of the in-process runs on either side of it, and
  the median round is recorded (this machine's speed drifts by 20% within minutes, so only
  neighbours are compared);
- in-process, one face at a time (the latency that the server's p50 at 1 client adds to);
- the same network without its input pool (computing at 96x96 throughout, as every network did
  before it), served by ours (OpenVINO, REST): what the faster networks give serving;
- peers: `mlflow models serve` of the logged model (`--env-manager local`), and BentoML serving the
  same SavedModel with adaptive batching (`bench/bentoml_service.py`, in a virtual environment of
  its own under bench/work, made with uv);
- warm-up: the first requests after a new version swaps in (a 1-face, then a 32-face request), with
  and without `--enable-model-warmup`, on TensorFlow (whose first call at a batch size is slow).
Clients are threads posting TF Serving's row format `{"instances": [face]}` (or the same face as a
gRPC tensor), one 96x96x1 face per request on a kept-alive connection, as fast as answers come, for
a fixed time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent / "tests")]

import numpy as np  # noqa: E402
from results_table import secondary_row, write_result  # noqa: E402
from servers import free_port, running, serve_command, wait_for_version  # noqa: E402

CLIENT_COUNTS = (1, 8, 16)
IN_PROCESS_BATCH = 16
ENGINES = ("openvino", "tensorflow")
TARGET_VS_INPROCESS, TARGET_GRPC_VS_REST, TARGET_VS_BENTOML, TARGET_VS_MLFLOW = 1.5, 1.2, 2.0, 2.0
TARGET_P50_MS = 2.0
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


def build_model(
    work: Path, width: int, depth: int, input_pool: int | None = None
) -> tuple[Path, str, object]:
    """The emotion model exported as version 1 under `work/serving` (the network's own input pool
    unless `input_pool` is given), and logged to MLflow in `work`."""
    import keras
    import mlflow

    from emotion_ai.modeling.logged_models import log_keras_model
    from emotion_ai.modeling.networks import build_emotion_model
    from emotion_ai.release.model_repository import export_saved_model
    from emotion_ai.settings import ResNetConfig

    keras.utils.set_random_seed(0)
    pool = {} if input_pool is None else {"input_pool": input_pool}
    model = build_emotion_model(ResNetConfig(width=width, depth=depth, **pool))
    export_saved_model(model, work / "serving", MODEL, 1)
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    mlflow.set_experiment("bench-serve")
    with mlflow.start_run():
        model_uri = log_keras_model(model, np.zeros((1, 96, 96, 1), np.float32), MODEL).model_uri
    return work / "serving", model_uri, model


@contextmanager
def ours(base: Path, log: Path, *options: str):
    """Our server on `base` with `options`; yields its REST predict URL and gRPC address."""
    port, grpc_port = free_port(), free_port()
    command = serve_command(
        base, port, "--model-name", MODEL, "--request-sample-rate", "0", "--port", str(grpc_port),
        "--file-system-poll-wait-seconds", "0.2", *options,
    )  # fmt: skip
    with running(command, f"http://127.0.0.1:{port}/v1/models/{MODEL}", log):
        yield f"http://127.0.0.1:{port}/v1/models/{MODEL}:predict", f"127.0.0.1:{grpc_port}"


def load_grpc_clients(address: str, face: np.ndarray, clients: int, seconds: float) -> dict:
    """`clients` threads calling TF Serving's gRPC Predict with one face back to back for
    `seconds`, each on its own channel."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["face"].CopyFrom(tf.make_tensor_proto(face[np.newaxis]))
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    def client() -> None:
        with grpc.insecure_channel(address) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                stub.Predict(request, timeout=60)
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return _summary(latencies, time.perf_counter() - started)


def measure_grpc(address: str, face: np.ndarray, seconds: float) -> dict[str, dict]:
    load_grpc_clients(address, face, 4, 2.0)
    return {str(c): load_grpc_clients(address, face, c, seconds) for c in CLIENT_COUNTS}


BENTOML_REQUIREMENTS = ("bentoml==1.4.*", "tensorflow-cpu==2.21.*")


def bentoml_environment(work: Path) -> Path:
    """A virtual environment with BentoML and TensorFlow under `work` (made once, with uv); returns
    its Python."""
    venv = work / "bentoml-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        uv = [shutil.which("uv")] if shutil.which("uv") else ["python3", "-m", "uv"]  # as `make`
        subprocess.run([*uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(
            [*uv, "pip", "install", "--quiet", "--python", str(python), *BENTOML_REQUIREMENTS],
            check=True,
        )
    return python


@contextmanager
def bentoml_serve(python: Path, saved_model_dir: Path, log: Path):
    port = free_port()
    command = [
        str(python), "-m", "bentoml", "serve", "bentoml_service:EmotionModel",
        "--host", "127.0.0.1", "--port", str(port), "--working-dir", str(BENCH_DIR),
    ]  # fmt: skip
    environment = {**os.environ, "SAVED_MODEL_DIR": str(saved_model_dir)}
    with running(command, f"http://127.0.0.1:{port}/livez", log, environment):
        wait_until_ready(f"http://127.0.0.1:{port}/readyz")
        yield f"http://127.0.0.1:{port}/predict"


def wait_until_ready(url: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} was not ready within {timeout_s:g} s")


def first_requests_after_swap(work: Path, model, face: np.ndarray, warmup: bool) -> dict:
    """Milliseconds of the first 1-face and 32-face requests to a version that just swapped in (on
    TensorFlow, with or without replaying its warm-up requests first)."""
    from emotion_ai.release.model_repository import export_saved_model

    base = work / f"swap-warmup-{warmup}"
    shutil.copytree(work / "serving", base)
    flag = "--enable-model-warmup" if warmup else "--no-enable-model-warmup"
    with ours(base, work / f"swap-{warmup}.log", "--engine", "tensorflow", flag) as (url, _):
        export_saved_model(model, base, MODEL, 2)
        status = url.removesuffix(":predict")
        wait_for_version(status, "2")
        timings = {}
        for size in (1, 32):
            body = json.dumps({"instances": [face.astype(int).tolist()] * size}).encode()
            timings[f"{size}_faces"] = load_requests(url, body, 1)[0] * 1000
        return timings


def load_requests(url: str, body: bytes, count: int) -> list[float]:
    """Seconds of `count` requests sent one after another."""
    address = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("POST", address.path, body, {"content-type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
        seconds.append(time.perf_counter() - started)
    connection.close()
    return seconds


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


def full_resolution_network(
    work: Path, width: int, depth: int, body: bytes, seconds: float
) -> dict:
    """Our server (OpenVINO, REST) on the same network computing at 96x96 throughout, as every
    network did before the input pool (`--input-pool 1`): what the faster networks give serving."""
    base, _, _ = build_model(work / "full-resolution", width, depth, input_pool=1)
    with ours(base, work / "full-resolution.log", "--engine", "openvino") as (url, _):
        return measure_server(url, body, seconds)


def measure(width: int, depth: int, seconds: float, rounds: int, bentoml_python: Path) -> dict:
    face = np.random.default_rng(0).integers(0, 256, (96, 96, 1)).astype(np.float32)
    body = json.dumps({"instances": [face.astype(int).tolist()]}).encode()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        work = Path(scratch)
        base, model_uri, keras_model = build_model(work, width, depth)
        model = InProcessModel(base / MODEL / "1", face)
        results = {"in_process": model.single_face(seconds)}
        for engine in ENGINES:
            with ours(base, work / f"{engine}.log", "--engine", engine) as (url, grpc_address):
                results[engine] = {
                    "rest": measure_server(url, body, seconds),
                    "grpc": measure_grpc(grpc_address, face, seconds),
                }
                if engine == "openvino":
                    results["paired_rounds"] = paired_rounds(url, body, model, rounds, seconds / 2)
        results["full_resolution"] = full_resolution_network(work, width, depth, body, seconds)
        with mlflow_serve(work, model_uri, free_port(), work / "mlflow.log") as url:
            results["mlflow"] = measure_server(url, body, seconds)
        with bentoml_serve(bentoml_python, base / MODEL / "1", work / "bentoml.log") as url:
            results["bentoml"] = measure_server(url, body, seconds)
        results["first_requests_after_swap_ms"] = {
            f"warmup_{enabled}": first_requests_after_swap(work, keras_model, face, enabled)
            for enabled in (True, False)
        }
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
    bentoml_python = bentoml_environment(BENCH_DIR / "work")
    measured = measure(args.width, args.depth, args.seconds, args.rounds, bentoml_python)
    command = (
        f"uv run python bench/serve.py --width {args.width} --depth {args.depth} --seconds "
        f"{args.seconds:g} --rounds {args.rounds}"
    )
    result = write_result(
        "serving",
        **headline(measured),
        command=command,
        details={**details(measured, args), "table_rows": table_rows(measured)},
    )
    print(json.dumps(result, indent=2))


def throughput(measured: dict, *path: str) -> float:
    """Requests per second at the most clients of one measured server."""
    for key in path:
        measured = measured[key]
    return measured[str(max(CLIENT_COUNTS))]["requests_per_s"]


def headline(measured: dict) -> dict:
    """Our server (OpenVINO, REST, most clients) over TensorFlow in-process batches: the median of
    the paired rounds."""
    middle = median_round(measured["paired_rounds"])
    return {
        "value": middle["served_faces_per_s"],
        "baseline": middle["in_process_batch_faces_per_s"],
        "target": TARGET_VS_INPROCESS,
        "unit": f"faces/s at {max(CLIENT_COUNTS)} clients (REST, OpenVINO; median of rounds)",
    }


def details(measured: dict, args) -> dict:
    rest, grpc_ = throughput(measured, "openvino", "rest"), throughput(measured, "openvino", "grpc")
    return {
        "ratio_vs_tf_inprocess": median_round(measured["paired_rounds"])["ratio"],
        "ratio_vs_tf_inprocess_rounds": [r["ratio"] for r in measured["paired_rounds"]],
        "ratio_grpc_vs_rest": grpc_ / rest,
        "ratio_vs_bentoml": rest / throughput(measured, "bentoml"),
        "ratio_vs_mlflow": rest / throughput(measured, "mlflow"),
        "ratio_openvino_vs_tensorflow_engine": rest / throughput(measured, "tensorflow", "rest"),
        "ratio_input_pool_vs_full_resolution": rest / throughput(measured, "full_resolution"),
        "p50_ms_1_client": measured["openvino"]["rest"]["1"]["p50_ms"],
        "p50_ms_1_client_grpc": measured["openvino"]["grpc"]["1"]["p50_ms"],
        "targets": {
            "ratio_vs_tf_inprocess": TARGET_VS_INPROCESS,
            "ratio_grpc_vs_rest": TARGET_GRPC_VS_REST,
            "ratio_vs_bentoml": TARGET_VS_BENTOML,
            "ratio_vs_mlflow": TARGET_VS_MLFLOW,
            "p50_ms_1_client": TARGET_P50_MS,
        },
        "clients": list(CLIENT_COUNTS),
        "measured": measured,
        "width": args.width,
        "depth": args.depth,
        "request": "one 96x96x1 face: JSON {'instances': [...]} or a gRPC float32 tensor",
        "cores": os.cpu_count(),
    }


def table_rows(measured: dict) -> list[dict]:
    busiest = f"req/s at {max(CLIENT_COUNTS)} clients"
    rest = throughput(measured, "openvino", "rest")
    swap = measured["first_requests_after_swap_ms"]
    return [
        secondary_row(
            "serving: input-pooled network vs the same at 96x96 (OpenVINO, REST)",
            value=rest,
            baseline=throughput(measured, "full_resolution"),
            target="> 1",
            unit=busiest,
        ),
        secondary_row(
            "serving gRPC vs REST (OpenVINO)",
            value=throughput(measured, "openvino", "grpc"),
            baseline=rest,
            target=TARGET_GRPC_VS_REST,
            unit=busiest,
        ),
        secondary_row(
            "serving vs BentoML (adaptive batching)",
            value=rest,
            baseline=throughput(measured, "bentoml"),
            target=TARGET_VS_BENTOML,
            unit=busiest,
        ),
        secondary_row(
            "serving vs mlflow models serve",
            value=rest,
            baseline=throughput(measured, "mlflow"),
            target=TARGET_VS_MLFLOW,
            unit=busiest,
        ),
        secondary_row(
            "serving engine OpenVINO vs TensorFlow (REST)",
            value=rest,
            baseline=throughput(measured, "tensorflow", "rest"),
            target="> 1",
            unit=busiest,
        ),
        secondary_row(
            f"serving p50 at 1 client, REST (target: ≤ {TARGET_P50_MS:g} ms)",
            value=measured["openvino"]["rest"]["1"]["p50_ms"],
            baseline=TARGET_P50_MS,
            target=f"≤ {TARGET_P50_MS:g} ms",
            unit="ms",
            lower_is_better=True,
        ),
        secondary_row(
            "first 32-face request after a swap: warm-up vs none (TensorFlow)",
            value=swap["warmup_True"]["32_faces"],
            baseline=swap["warmup_False"]["32_faces"],
            target="> 1",
            unit="ms",
            lower_is_better=True,
        ),
    ]


if __name__ == "__main__":
    main()
