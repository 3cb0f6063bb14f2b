"""The server's Prometheus metrics, in a registry of its own (two apps in one process, as in
tests, never share counters): requests by route and status, latency, rows predicted, the
rows of each forward pass and the inputs outside what training saw."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384, 65536)


class Metrics:
    """What ``GET /metrics`` shows."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tabnn_requests", "HTTP requests answered.", ["method", "route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "tabnn_request_seconds", "Time from a request's arrival to its answer.", ["route"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.rows = Counter(
            "tabnn_rows_predicted", "Rows predicted.", ["model"], registry=self.registry
        )
        self.batch_rows = Histogram(
            "tabnn_batch_rows", "Rows in each forward pass.", ["model"],
            buckets=ROW_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.outside = Counter(
            "tabnn_inputs_outside_training",
            "Input values outside what the model saw in training, by column and kind "
            "(unseen_category, above_range, below_range, unseen_missing).",
            ["model", "column", "kind"],
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def text(self) -> bytes:
        """The Prometheus text; with several worker processes (``PROMETHEUS_MULTIPROC_DIR``
        set, as ``tabnn serve --workers`` does) the sum over all of them, so that a scrape
        answered by any worker sees every request."""
        if MULTIPROCESS_VARIABLE not in os.environ:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
