"""Faults users hit, tried against the real servers: SeaweedFS (S3), MLflow's registry on SQLite,
and our model server serving from `s3://`.

While 16 clients send valid predict requests (10,000 by default) and one abusive client sends image
bombs, oversized and malformed bodies, the operator side of this script, in order:
- promotes version 2 (registry alias, export to S3, `stable` label) and waits until it serves;
- stops SeaweedFS (SIGSTOP) for a while: an S3 that hangs, then comes back;
- drops a corrupt version (garbage `saved_model.pb`) and a keypoint model into the emotion folder;
- writes a folder named `²` beside the versions, then promotes version 1 (the server must still
follow).
A watcher polls `/healthz` every 50 ms and the server's memory. Then, one at a time: malformed
requests (each must be a 4xx, never a 500), a body that never arrives whole (408), and `promote`
against a tracking server that is down (fails within seconds, changes nothing). Then the faults of
the pipeline's state (bench/state_faults.py): the gate's decision after its round trip through the
steps' file, two runs at once on one state, a promote during a run, a corrupt tracking database, and
a password in a failing tracking URI.

A case is survived when the server kept answering and did what the case expects, and lost nothing
when no request failed and the served version is the one last promoted. `value` is the number of
cases survived, `baseline` the number tried: target ratio 1.0, with 0 failed requests.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent / "tests")]

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402
from images import b64_request, png, png_claiming  # noqa: E402
from results_table import write_result  # noqa: E402
from serve import load_clients  # noqa: E402
from servers import (  # noqa: E402
    free_port,
    running,
    seaweedfs,
    serve_command,
    served_version,
    wait_for_version,
)

MODEL = "emotion-ai-emotion"
BUCKET = "faults"
S3_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}
HEALTHZ_TARGET_MS = 100.0
EVENTS: list[tuple[str, float]] = []
"""What the operator did when (monotonic seconds), to line up with slow /healthz polls."""


def event(name: str) -> None:
    EVENTS.append((name, time.monotonic()))


MEMORY_BOUND_MB = 3000.0


@dataclass
class Case:
    name: str
    survived: bool
    lost_nothing: bool
    detail: str


def malformed_bodies() -> dict[str, bytes]:
    """Each must get a 4xx with a JSON error."""
    face = [[0] * 96] * 96
    return {
        "number of 400 digits": b'{"instances": [[1' + b"0" * 400 + b"]]}",
        "JSON nested 100,000 deep": b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "20000x20000 image bomb": b64_request(png_claiming(20_000, 20_000)),
        "10,000 1x1 images": b64_request(*[png(1, 1)] * 10_000),
        "truncated JPEG": b64_request(b"\xff\xd8\xff\xe0" + b"\x00" * 40),
        "not an image": b64_request(b"hello, I am text"),
        "not JSON": b"{instances: nope",
        "wrong shape": json.dumps({"instances": [[1, 2, 3]]}).encode(),
        "NaN pixels": b'{"instances": [[' + b",".join([b"NaN"] * 9216) + b"]]}",
        "ragged faces": json.dumps({"instances": [face, face[:50]]}).encode(),
    }


POLLER = """
import sys, time, urllib.request
url, out = sys.argv[1], open(sys.argv[2], "w", buffering=1)
while True:
    started = time.perf_counter()
    urllib.request.urlopen(url, timeout=30).read()
    out.write(f"{time.monotonic()} {(time.perf_counter() - started) * 1000}\\n")
    time.sleep(0.05)
"""


class Watch(threading.Thread):
    """Polls `/healthz` every 50 ms from a process of its own (so the load generator's threads never
    delay a poll), and samples the server's resident memory, until stopped."""

    def __init__(self, base_url: str, pid: int, work: Path) -> None:
        super().__init__(daemon=True)
        self.process, self.polls = psutil.Process(pid), work / "healthz.txt"
        self.poller = subprocess.Popen(
            [sys.executable, "-c", POLLER, f"{base_url}/healthz", str(self.polls)]
        )
        self.peak_rss_mb = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.peak_rss_mb = max(self.peak_rss_mb, self.process.memory_info().rss / 2**20)
            time.sleep(0.05)
        self.poller.terminate()
        self.poller.wait()

    def summary(self) -> dict:
        polls = [tuple(map(float, line.split())) for line in self.polls.read_text().splitlines()]
        latencies_ms = [ms for _, ms in polls]
        return {
            "healthz_polls": len(polls),
            "healthz_p50_ms": float(np.percentile(latencies_ms, 50)),
            "healthz_p99_ms": float(np.percentile(latencies_ms, 99)),
            "healthz_max_ms": max(latencies_ms),
            "healthz_slowest": [
                {"ms": ms, "at_s": at - EVENTS[0][1]}
                for at, ms in sorted(polls, key=lambda poll: -poll[1])[:8]
            ],
            "server_peak_rss_mb": self.peak_rss_mb,
        }


class Abuser(threading.Thread):
    """One client sending heavy or malformed requests back to back; counts answers by status."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.statuses, self.stopped = url, {}, threading.Event()
        self.bodies = [
            b64_request(png(6000, 6000)),  # 36 MP: legal, decoded off the event loop
            b64_request(png_claiming(20_000, 20_000)),
            b64_request(*[png(1, 1)] * 10_000),
            b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        ]

    def run(self) -> None:
        session = requests.Session()
        while not self.stopped.is_set():
            for body in self.bodies:
                status = session.post(self.url, data=body, timeout=60).status_code
                self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1


def _registered_versions(work: Path, width: int) -> None:
    """Two registered versions of the emotion model in MLflow on SQLite under `work`."""
    import keras

    from emotion_ai.modeling.logged_models import log_keras_model
    from emotion_ai.modeling.networks import build_emotion_model
    from emotion_ai.release import registry
    from emotion_ai.settings import ResNetConfig
    from emotion_ai.steps.tracking import local_tracking, use_tracking

    use_tracking(local_tracking(work))
    import mlflow

    for seed in (0, 1):
        keras.utils.set_random_seed(seed)
        with mlflow.start_run():
            model = build_emotion_model(ResNetConfig(width=width))
            uri = log_keras_model(model, np.zeros((1, 96, 96, 1), np.float32), MODEL).model_uri
        registry.register_version(uri, MODEL, {})


def _put(key: str, body: bytes) -> None:
    from emotion_ai.locations import s3_client

    s3_client().put_object(Bucket=BUCKET, Key=key, Body=body)


def _keypoint_version(base: str, version: int) -> None:
    """A keypoint model exported where an emotion version belongs."""
    from emotion_ai.modeling.networks import build_keypoint_model
    from emotion_ai.release.model_repository import export_saved_model
    from emotion_ai.settings import ResNetConfig

    export_saved_model(build_keypoint_model(ResNetConfig()), base, MODEL, version)


def operate(base: str, model_url: str, weed: subprocess.Popen, outage_s: float) -> list[Case]:
    """The operator's faults, while the load runs."""
    from emotion_ai.release.publishing import publish

    cases = []
    event("promote 2")
    publish(MODEL, 2, base)
    wait_for_version(model_url, "2", timeout_s=120)
    cases.append(Case("promote under load", True, True, "version 2 served"))

    event("S3 stopped")
    weed.send_signal(signal.SIGSTOP)
    time.sleep(outage_s)
    weed.send_signal(signal.SIGCONT)
    event("S3 back")
    time.sleep(3)
    ready = requests.get(model_url.replace(f"/v1/models/{MODEL}", "/readyz"), timeout=60)
    serving = served_version(model_url)
    cases.append(
        Case(
            f"S3 hung for {outage_s:g} s",
            ready.status_code == 200,
            serving == "2",
            f"/readyz {ready.status_code} after, serving {serving}",
        )
    )

    event("corrupt 3, keypoint model 4")
    _put(f"serving/{MODEL}/3/saved_model.pb", b"not a saved model")
    _put(f"serving/{MODEL}/3/variables/variables.index", b"nor this")
    _keypoint_version(base, 4)
    time.sleep(5)
    missing = [requests.get(f"{model_url}/versions/{v}", timeout=30).status_code for v in (3, 4)]
    serving = served_version(model_url)
    cases.append(
        Case(
            "corrupt and wrong-contract versions dropped",
            missing == [404, 404],
            serving == "2",
            f"versions 3 and 4 answer {missing}, serving {serving}",
        )
    )

    event("² folder, promote 1")
    _put(f"serving/{MODEL}/²/saved_model.pb", b"odd")
    publish(MODEL, 1, base)
    try:
        wait_for_version(model_url, "1", timeout_s=60)
        followed = True
    except AssertionError:
        followed = False
    cases.append(
        Case("a folder named ² among the versions", followed, followed, "then version 1 promoted")
    )
    return cases


def malformed_requests(url: str) -> Case:
    statuses = {
        name: requests.post(url, data=body, timeout=60).status_code
        for name, body in malformed_bodies().items()
    }
    bad = {name: status for name, status in statuses.items() if not 400 <= status < 500}
    return Case(f"{len(statuses)} malformed requests", not bad, not bad, f"statuses {statuses}")


def slow_body(port: int) -> Case:
    """Headers promising 1,000 bytes, 10 sent, then silence: a 408 once the body timeout passes."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(
            f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            'Content-Type: application/json\r\n\r\n{"instance'.encode()
        )
        answer = connection.recv(4096).decode(errors="replace")
    seconds = time.perf_counter() - started
    ok = " 408 " in answer.splitlines()[0] if answer else False
    return Case("a body that never arrives whole", ok, ok, f"{answer[:40]!r} after {seconds:.1f} s")


def promote_with_tracking_down(base: str) -> Case:
    from emotion_ai.release.model_repository import read_labels

    before = read_labels(base, MODEL)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "emotion_ai", "promote", MODEL, "2", "--model-base-path", base],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"http://u:pw@127.0.0.1:{free_port()}"},
    )
    seconds = time.perf_counter() - started
    unchanged = read_labels(base, MODEL) == before
    return Case(
        "promote with the tracking server down",
        result.returncode == 1 and "pw@" not in result.stdout + result.stderr,
        unchanged,
        f"exit {result.returncode} after {seconds:.0f} s; labels unchanged: {unchanged}",
    )


def run(args: argparse.Namespace, work: Path) -> dict:
    from emotion_ai.release.publishing import publish

    (work / "s3").mkdir()
    with seaweedfs(work / "s3") as (endpoint, weed):
        os.environ.update({**S3_ENVIRONMENT, "AWS_ENDPOINT_URL": endpoint})
        from emotion_ai.locations import s3_client

        s3_client().create_bucket(Bucket=BUCKET)
        base = f"s3://{BUCKET}/serving"
        _registered_versions(work, args.width)
        publish(MODEL, 1, base)
        port = free_port()
        root, model_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/v1/models/{MODEL}"
        command = serve_command(
            base,
            port,
            "--model-name",
            MODEL,
            "--request-sample-rate",
            "0",
            "--file-system-poll-wait-seconds",
            "0.5",
            "--body-timeout-seconds",
            "3",
        )
        with running(command, model_url, work / "server.log") as server:
            watch, abuser = Watch(root, server.pid, work), Abuser(f"{model_url}:predict")
            watch.start()
            time.sleep(1)  # the poller's own start-up
            event("load starts")
            abuser.start()
            face = json.dumps({"instances": [np.full((96, 96, 1), 128).tolist()]}).encode()
            load, operated = {}, threading.Event()
            loader = threading.Thread(
                target=lambda: load.update(
                    _load_until(f"{model_url}:predict", face, args, operated)
                )
            )
            loader.start()
            try:
                cases = operate(base, model_url, weed, args.outage_seconds)
            finally:
                operated.set()
                loader.join()
            abuser.stopped.set()
            abuser.join()
            event("malformed requests")
            cases += [malformed_requests(f"{model_url}:predict"), slow_body(port)]
            watch.stopped.set()
            watch.join()
            cases.append(promote_with_tracking_down(base))
            return {"cases": cases, "load": load, "abuse": abuser.statuses, **watch.summary()}


def _load_until(url: str, body: bytes, args: argparse.Namespace, operated: threading.Event) -> dict:
    """Valid requests from `args.clients` clients until `args.requests` were sent and the operator
    is done; failed requests are counted, with the first few kept."""
    done, failures, started = 0, [], time.perf_counter()
    while done < args.requests or not operated.is_set():
        measured = load_clients(url, body, args.clients, 2.0, allow_failures=True)
        done += measured["requests"]
        failures += measured["failures"]
    return {
        "requests": done,
        "failed_requests": len(failures),
        "failures": failures[:5],
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--outage-seconds", type=float, default=15.0)
    parser.add_argument("--width", type=int, default=16)
    args = parser.parse_args()
    from state_faults import state_cases

    with tempfile.TemporaryDirectory(prefix="bench-faults-") as scratch:
        measured = run(args, Path(scratch))
        cases = measured.pop("cases") + state_cases(Path(scratch))
    worst = measured["healthz_max_ms"]
    cases.append(
        Case(
            f"/healthz under {HEALTHZ_TARGET_MS:g} ms throughout",
            worst < HEALTHZ_TARGET_MS,
            measured["server_peak_rss_mb"] < MEMORY_BOUND_MB,
            f"max {worst:.0f} ms, peak memory {measured['server_peak_rss_mb']:.0f} MB",
        )
    )
    if measured["load"]["failed_requests"]:
        cases.append(Case("no failed request under load", False, False, "see load.failures"))
    survived = sum(case.survived and case.lost_nothing for case in cases)
    command = "uv run python bench/faults.py " + " ".join(sys.argv[1:])
    details = {
        "cases": [asdict(case) for case in cases],
        **measured,
        "events": [{"event": name, "at_s": at - EVENTS[0][1]} for name, at in EVENTS],
        "healthz_target_ms": HEALTHZ_TARGET_MS,
        "memory_bound_mb": MEMORY_BOUND_MB,
    }
    result = write_result(
        "faults",
        value=survived,
        baseline=len(cases),
        target=1.0,
        unit="fault cases survived with nothing lost",
        command=command.strip(),
        details=details,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
