"""The agent-to-supervisor channel: an append-only file of JSON lines.

A file, not a pipe: the child never blocks on a slow reader, and whatever was written before a
crash, ``os._exit`` or SIGKILL is still there for the supervisor to read."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class ChannelWriter:
    """Appends one JSON record per line with a single ``write`` call."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append ``records``; errors (disk full, closed fd) are swallowed, never raised."""
        if not records:
            return
        data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        try:
            os.write(self._fd, data.encode("utf-8"))
        except OSError:
            pass

    def close(self) -> None:
        """Close the file descriptor."""
        try:
            os.close(self._fd)
        except OSError:
            pass


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Return every complete record in the channel file; a torn last line is ignored."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    records = []
    for line in raw.split(b"\n"):
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
