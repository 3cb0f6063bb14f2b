"""Load test of ``tabnn serve`` on loopback: latency and throughput as clients see them.

Trains the default model on Titanic (``../shared/data``; the bundled Sonar data without it),
starts the server as a user would (``tabnn serve``, one process), and drives it with a small
asyncio HTTP/1.1 client on keep-alive connections (a few seconds per setting):

- one-row requests (Open Inference Protocol JSON) from 1, 8 and 32 concurrent clients,
  without and with micro-batching: p50 and p99 latency, requests per second;
- 1,000-row requests (MLflow ``dataframe_split``) from 2 clients: rows per second.

The baseline, measured in the same run, is the same model called in-process
(``predict_proba`` on one row, one thread): what HTTP, JSON and the server add is the
difference. Published references (other machines, other models): KServe's scikit-learn
server p50 1.3 ms / p99 2.2 ms at 500 requests/s; MLServer's REST benchmark about 1,300
requests/s with adaptive batching.

    .venv/bin/python benchmarks/serve.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import requests
import torch

import tabnn
from tabnn import TabNNClassifier
from tabnn.data import read_table, split_target
from tabnn.features.frames import aligned

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def training_table() -> tuple[str, pd.DataFrame, pd.Series]:
    titanic = SHARED / "titanic" / "train.csv"
    if titanic.exists():
        return "titanic", *split_target(read_table(titanic), "Survived")
    sonar = ROOT / "src/tabnn/datasets/sonar.csv"
    return "sonar", *split_target(read_table(sonar, header=False), "-1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, extra: list[str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [sys.executable, "-m", "tabnn", "serve", str(model_dir), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--log-level", "warning", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        try:
            if requests.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).ok:
                return process, port
        except requests.ConnectionError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def one_row_request(model, X: pd.DataFrame) -> bytes:
    row = X.iloc[[0]]
    inputs = []
    for column in model.schema_.features:
        value = row[column].iloc[0]
        numeric = column in model.schema_.numeric
        value = None if pd.isna(value) else (float(value) if numeric else str(value))
        datatype = "FP64" if numeric else "BYTES"
        inputs.append({"name": column, "shape": [1], "datatype": datatype, "data": [value]})
    return json.dumps({"inputs": inputs}).encode()


def bulk_request(X: pd.DataFrame, rows: int) -> bytes:
    chunk = pd.concat([X] * (rows // len(X) + 1), ignore_index=True).head(rows)
    return json.dumps({"dataframe_split": json.loads(chunk.to_json(orient="split"))}).encode()


def http_request(path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def client(port: int, request: bytes, until: float, latencies: list, statuses: list):
    """One keep-alive connection sending requests back to back until ``until``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < until:
        start = time.perf_counter()
        writer.write(request)
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - start)
        statuses.append(int(status_line.split()[1]))
    writer.close()


async def load(port: int, request: bytes, clients: int, seconds: float) -> dict:
    latencies, statuses = [], []
    until = time.perf_counter() + seconds
    start = time.perf_counter()
    await asyncio.gather(
        *(client(port, request, until, latencies, statuses) for _ in range(clients))
    )
    elapsed = time.perf_counter() - start
    bad = sum(s != 200 for s in statuses)
    if bad:
        raise SystemExit(f"{bad} of {len(statuses)} requests failed: {set(statuses)}")
    ms = np.array(latencies) * 1000
    return {
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "rps": len(ms) / elapsed,
    }


def in_process_baseline(model, X: pd.DataFrame, seconds: float) -> float:
    """One-row predict_proba calls per second in-process, on one torch thread (as the
    server predicts)."""
    torch.set_num_threads(1)
    row = aligned(model, X.iloc[[0]])
    calls, until = 0, time.perf_counter() + seconds
    while time.perf_counter() < until:
        model.predict_proba(row)
        calls += 1
    return calls / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    name, X, y = training_table()
    with tempfile.TemporaryDirectory() as tmp:
        model = TabNNClassifier(random_state=0).fit(X, y)
        model_dir = tabnn.save(model, Path(tmp) / name)
        model = tabnn.load(model_dir)
        baseline = in_process_baseline(model, X, args.seconds)
        print(f"model: default, trained on {name} ({len(X)} rows, {X.shape[1]} columns)")
        print(f"baseline, in-process predict_proba of one row: {baseline:,.0f} calls/s")
        one = one_row_request(model, X)
        path = f"/v2/models/{name}/infer"
        print(f"\n{'one-row requests':24s} {'clients':>7s} {'p50 ms':>7s} {'p99 ms':>7s} "
              f"{'req/s':>7s} {'/ baseline':>10s}")  # fmt: skip
        settings = {"no batching": [], "micro-batching": ["--batch-max-rows", "64"]}
        for label, extra in settings.items():
            process, port = start_server(model_dir, extra)
            try:
                asyncio.run(load(port, http_request(path, one), 4, 1.0))  # warm up
                for clients in (1, 8, 32):
                    r = asyncio.run(load(port, http_request(path, one), clients, args.seconds))
                    print(f"{label:24s} {clients:7d} {r['p50']:7.2f} {r['p99']:7.2f} "
                          f"{r['rps']:7.0f} {r['rps'] / baseline:9.2f}x")  # fmt: skip
            finally:
                process.terminate()
                process.wait()
        bulk = http_request("/invocations", bulk_request(X, 1000))
        print()
        for runtime in ("torch", "onnx"):
            process, port = start_server(model_dir, ["--runtime", runtime])
            try:
                asyncio.run(load(port, bulk, 2, 1.0))
                r = asyncio.run(load(port, bulk, 2, args.seconds))
                print(f"1,000-row requests, 2 clients, --runtime {runtime}: "
                      f"{r['rps'] * 1000:,.0f} rows/s (p50 {r['p50']:.1f} ms)")  # fmt: skip
            finally:
                process.terminate()
                process.wait()


if __name__ == "__main__":
    main()
