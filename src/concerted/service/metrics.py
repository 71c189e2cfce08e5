"""Prometheus metrics, one registry per app (single-process mode).

Labels are route templates and status codes only, never an identifier.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from concerted.service.intake import Guard

__all__ = ["Metrics"]


class Metrics:
    """Requests, latencies, reports by recommendation, log and state sizes."""

    def __init__(self, guard: Guard) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "concerted_requests", "HTTP requests.", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "concerted_request_seconds",
            "HTTP request latency.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        reports = Gauge(
            "concerted_reports",
            "Reports acknowledged by recommendation.",
            ["recommendation"],
            registry=r,
        )
        for name in ("count", "review", "discount"):
            reports.labels(name).set_function(_counter(guard, name))
        Gauge("concerted_repeats", "Repeated reports answered.", registry=r).set_function(
            lambda: guard.stats.repeats
        )
        Gauge("concerted_refused", "Reports refused by the contract.", registry=r).set_function(
            lambda: guard.stats.refused
        )
        Gauge("concerted_groups", "Group commits.", registry=r).set_function(
            lambda: guard.stats.groups
        )
        Gauge("concerted_replayed", "Reports replayed at start.", registry=r).set_function(
            lambda: guard.stats.replayed
        )
        Gauge("concerted_log_offset", "Offset the state has learnt.", registry=r).set_function(
            lambda: guard.state.offset
        )
        Gauge("concerted_log_pending", "Requests waiting for the writer.", registry=r).set_function(
            guard.pending
        )
        Gauge("concerted_state_targets", "Targets with live state.", registry=r).set_function(
            lambda: len(guard.state.targets)
        )
        Gauge("concerted_state_reports", "Reports the scorer learnt.", registry=r).set_function(
            lambda: guard.state.scorer.seen
        )
        Gauge("concerted_state_pairs", "Reporter pairs the scorer holds.", registry=r).set_function(
            lambda: guard.state.scorer.pairs
        )
        Gauge(
            "concerted_hindsight_marked", "Targets the last hindsight run marked.", registry=r
        ).set_function(lambda: len(guard.state.hindsight))
        Gauge("concerted_ready", "1 once replay is done.", registry=r).set_function(
            lambda: int(guard.ready)
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _counter(guard: Guard, recommendation: str) -> Callable[[], float]:
    return lambda: guard.stats.reports[recommendation]
