"""Prometheus metrics of the inference service, in a registry of its own (nothing process-wide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class ServiceMetrics:
    """Requests, latency, batch sizes, images and errors.

    Examples:
        >>> m = ServiceMetrics(); m.observe("/v1/embed", 200, 0.01)
        >>> b'vistag_requests_total{route="/v1/embed",status="200"} 1.0' in m.render()
        True
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "vistag_requests", "HTTP requests by route and status", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "vistag_request_seconds",
            "request latency by route",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
        )
        self.batch_size = Histogram(
            "vistag_batch_size",
            "images per model forward",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.images = Counter("vistag_images", "images embedded", registry=self.registry)
        self.errors = Counter(
            "vistag_errors", "refused or failed requests by kind (HTTP status, busy)", ["kind"], registry=self.registry
        )

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
