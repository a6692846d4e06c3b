"""Ingest benchmark: vectorized Kaggle CSV parsing vs the seed's per-row `np.fromstring`, same run.

Full-size files: the real Kaggle files when given (--fkd / --fer), else generated files of the real
sizes (7049 FKD rows, 35887 FER rows), cached under bench/work/. The real FER2013 subset in
../shared/data is measured too when present. Each parse runs in a fresh process, so its peak memory
is its own, three times each; the median run is kept. Our parser is compiled (numba, cached on
disk); the one-time cost of loading it into a process is measured on a tiny input before the clock
starts and recorded on its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
WORK = BENCH_DIR / "work"
REAL_FER_SUBSET = BENCH_DIR.parent.parent / "shared" / "data" / "fer2013_real_subset.csv.gz"
FULL_FKD_ROWS, FULL_FER_ROWS = 7049, 35887
TARGET_RATIO = 20.0
REPEATS = 3


def _measure(kind: str, path: str, table_format: str) -> dict:
    """Runs in a child process: parses once, reports seconds, rows and the peak memory it added."""
    import numpy as np
    import pandas as pd
    import psutil

    from emotion_ai.data.formats import FER_FORMAT, FKD_FORMAT, open_text, read_table

    fmt = {"fkd": FKD_FORMAT, "fer": FER_FORMAT}[table_format]
    start = time.perf_counter()
    if kind == "ours":
        _load_compiled_parser(table_format)
    startup = time.perf_counter() - start
    before = psutil.Process().memory_info().rss
    start = time.perf_counter()
    if kind == "ours":
        rows = len(read_table(Path(path), fmt).images)
    else:
        with open_text(Path(path)) as text:
            frame = pd.read_csv(text)
        pixels = frame[fmt.pixel_column].apply(lambda s: np.fromstring(s, sep=" "))
        rows = len(pixels)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "seconds": seconds,
        "rows": rows,
        "peak_added_bytes": max(peak - before, 0),
        "startup_seconds": startup,
    }


def _load_compiled_parser(table_format: str) -> None:
    """Reads a two-row file of the format: loads (or, the first time, compiles) the compiled parser
    and everything else a first read loads, once per process, whatever the file."""
    import tempfile

    from emotion_ai.data.formats import FER_FORMAT, FKD_FORMAT, read_table
    from emotion_ai.data.synthetic import write_fer_csv, write_keypoints_csv

    write, fmt = {"fkd": (write_keypoints_csv, FKD_FORMAT), "fer": (write_fer_csv, FER_FORMAT)}[
        table_format
    ]
    with tempfile.TemporaryDirectory() as scratch:
        read_table(write(Path(scratch) / "tiny.csv", 2), fmt)


def measure(kind: str, path: Path, table_format: str) -> dict:
    """The median of REPEATS parses, each in a fresh process."""
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, __file__, "--child", kind, str(path), table_format],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        for _ in range(REPEATS)
    ]
    return sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]


def full_size_files(fkd: Path | None, fer: Path | None) -> dict[str, tuple[Path, str]]:
    from emotion_ai.data.synthetic import write_fer_csv, write_keypoints_csv

    WORK.mkdir(exist_ok=True)
    if fkd is None:
        fkd = WORK / "training.csv"
        if not fkd.exists():
            write_keypoints_csv(fkd, FULL_FKD_ROWS, seed=0)
    if fer is None:
        fer = WORK / "fer2013.csv"
        if not fer.exists():
            write_fer_csv(fer, FULL_FER_ROWS, seed=1)
    files = {"fkd": (fkd, "fkd"), "fer": (fer, "fer")}
    if REAL_FER_SUBSET.exists():
        files["fer_real_subset"] = (REAL_FER_SUBSET, "fer")
    return files


def bench_one(path: Path, table_format: str) -> dict:
    from emotion_ai.faces import FER_PIXELS, FKD_PIXELS

    ours, baseline = measure("ours", path, table_format), measure("baseline", path, table_format)
    raw_bytes = ours["rows"] * (FKD_PIXELS if table_format == "fkd" else FER_PIXELS)
    budget = 2 * raw_bytes + path.stat().st_size
    return {
        "file": str(path),
        "rows": ours["rows"],
        "file_bytes": path.stat().st_size,
        "ours_rows_per_s": ours["rows"] / ours["seconds"],
        "baseline_rows_per_s": baseline["rows"] / baseline["seconds"],
        "ratio": baseline["seconds"] / ours["seconds"],
        "ours_startup_seconds": ours["startup_seconds"],
        "ratio_including_startup": baseline["seconds"]
        / (ours["seconds"] + ours["startup_seconds"]),
        "ours_peak_added_bytes": ours["peak_added_bytes"],
        "baseline_peak_added_bytes": baseline["peak_added_bytes"],
        "memory_budget_bytes": budget,
        "within_memory_budget": ours["peak_added_bytes"] <= budget,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--child", nargs=3, metavar=("KIND", "PATH", "FORMAT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--fkd", type=Path, help="a real Kaggle FKD training.csv")
    parser.add_argument("--fer", type=Path, help="a real fer2013.csv")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(*args.child)))
        return
    sys.path.insert(0, str(BENCH_DIR))
    from results_table import write_result

    files = full_size_files(args.fkd, args.fer)
    details = {name: bench_one(path, fmt) for name, (path, fmt) in files.items()}
    synthetic = args.fkd is None or args.fer is None
    total_rows = details["fkd"]["rows"] + details["fer"]["rows"]
    ours_s = sum(details[n]["rows"] / details[n]["ours_rows_per_s"] for n in ("fkd", "fer"))
    base_s = sum(details[n]["rows"] / details[n]["baseline_rows_per_s"] for n in ("fkd", "fer"))
    result = write_result(
        "ingest",
        value=total_rows / ours_s,
        baseline=total_rows / base_s,
        target=TARGET_RATIO,
        unit="rows/s",
        command="make bench-ingest",
        details={
            "data": "generated files of the real sizes" if synthetic else "real Kaggle files",
            "files": details,
        },
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
