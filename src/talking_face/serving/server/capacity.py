"""How many sessions the live server runs: at most `max_sessions` in all and `max_sessions_per_client` for
one client (so one user cannot hold every slot), none once it is shutting down; and the graceful stop
that lets the running streams end."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from contextlib import contextmanager

from talking_face.serving.server.metrics import ServerMetrics

logger = logging.getLogger(__name__)

CLOSE_WAIT_S = 5.0  # for a stream told to stop to send its close


class ServerBusy(Exception):
    """No session for this client now; the message says which limit."""


class SessionSlots:
    """Counts live sessions (streams and video requests) against the limits; `claim` raises ServerBusy."""

    def __init__(self, limit: int, per_client: int, metrics: ServerMetrics):
        self.limit, self.per_client, self.metrics = limit, per_client, metrics
        self.by_client: Counter[str] = Counter()
        self.streams: dict[asyncio.Task, object] = {}  # running stream handlers -> their sessions (`stop()`)
        self.ids = itertools.count(1)
        self.draining = False

    @property
    def active(self) -> int:
        return self.by_client.total()

    @contextmanager
    def claim(self, client: str):
        """A session id for `client` while the block runs."""
        if self.draining:
            raise ServerBusy("server shutting down")
        if self.active >= self.limit:
            raise ServerBusy(f"server busy: {self.active} of {self.limit} sessions in use, try again later")
        if self.by_client[client] >= self.per_client:
            raise ServerBusy(
                f"per-client limit: this client already has {self.per_client} of the {self.limit} sessions, "
                "try again when one ends"
            )
        self.by_client[client] += 1
        self.metrics.sessions.inc()
        try:
            yield f"s{next(self.ids)}"
        finally:
            self.by_client[client] -= 1
            if not self.by_client[client]:
                del self.by_client[client]  # an entry per client ever seen would grow for as long as the server runs
            self.metrics.sessions.dec()

    @contextmanager
    def stream(self, session):
        """Registers the running stream (this task) for `drain`."""
        task = asyncio.current_task()
        self.streams[task] = session
        try:
            yield
        finally:
            del self.streams[task]

    async def drain(self, timeout_s: float) -> None:
        """Refuses new sessions, waits up to `timeout_s` for the running streams to end, stops the rest (1001)."""
        self.draining = True
        running = dict(self.streams)
        if not running:
            return
        logger.warning("stopping: waiting up to %g s for %d stream(s) to end", timeout_s, len(running))
        _, late = await asyncio.wait(running, timeout=timeout_s)
        if late:
            logger.warning("stopping: closing %d stream(s) still running", len(late))
            for task in late:
                running[task].stop()
            await asyncio.wait(late, timeout=CLOSE_WAIT_S)
