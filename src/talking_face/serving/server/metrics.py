"""Prometheus metrics of the live server, in a registry of their own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5, 0.75, 1.0, 2.0, 5.0)


class ServerMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.sessions = Gauge(
            "talking_face_live_sessions", "Live sessions (streams and video requests) now", registry=self.registry
        )
        self.sessions_total = Counter(
            "talking_face_sessions", "Sessions by kind and outcome", ["kind", "outcome"], registry=self.registry
        )
        self.access_denied = Counter(
            "talking_face_access_denied",
            "Requests refused for a missing or wrong token (no_token, wrong_token) or their origin (origin)",
            ["reason"],
            registry=self.registry,
        )
        self.frames_sent = Counter("talking_face_frames_sent", "Streamed frames sent", registry=self.registry)
        self.frames_dropped = Counter(
            "talking_face_frames_dropped",
            "Streamed frames dropped for a client reading too slowly",
            registry=self.registry,
        )
        self.frame_latency = Histogram(
            "talking_face_frame_latency_seconds",
            "From the arrival of the audio a frame waited for to the frame's departure",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
