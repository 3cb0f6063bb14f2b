"""The server's Prometheus metrics, in a registry of its own (two apps in one process, as in
tests, never share counters): requests by route and status, latency, rows predicted, the
rows of each forward pass and the inputs outside what training saw."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

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
        return generate_latest(self.registry)
