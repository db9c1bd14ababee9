"""Records that cannot wait for the end of the run: while the child runs, the supervisor tails
the channel for them (a ``deadlock`` the agent's watchdog saw) and reacts at once, e.g. by
writing an interim report while the target is still hung."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ALERT_TYPES = ("deadlock",)
POLL_EVERY_S = 0.5


class ChannelAlerts:
    """Reads only what was appended to the channel since the last look (at most every
    ``every_s``) and calls ``callback(record)`` for each new record of an alert type."""

    def __init__(self, channel: Path, callback: Callable[[dict[str, Any]], None],
                 types: tuple[str, ...] = ALERT_TYPES, every_s: float = POLL_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._channel = channel
        self._callback = callback
        self._markers = [f'"type":"{t}"'.encode() for t in types]
        self._every_s = every_s
        self._clock = clock
        self._next = 0.0
        self._offset = 0
        self._partial = b""

    def poll(self) -> None:
        """Look for new alert records (cheap when called more often than ``every_s``)."""
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self._every_s
        for record in self._new_alerts():
            self._callback(record)

    def _new_alerts(self) -> list[dict[str, Any]]:
        try:
            with open(self._channel, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError:
            return []
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        alerts = []
        for line in lines:
            if any(marker in line for marker in self._markers):
                try:
                    alerts.append(json.loads(line))
                except ValueError:
                    continue
        return alerts
