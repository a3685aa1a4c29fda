"""The reader's run summary: the one JSON line it prints last on stdout when a bounded run ends.

    {"received":1000,"delivered":998,"dead_lettered":2,"failed":0,"in_flight":0,"duration_seconds":1.2}

Every received line must end delivered to Kafka or dead-lettered; anything else is a lost event and
fails the Airflow task, whatever the reader's exit status said.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

_COUNTS = ("received", "delivered", "dead_lettered", "failed", "in_flight")


@dataclass(frozen=True)
class Summary:
    """The counts of one bounded run; as_dict() is what the task pushes to XCom."""

    received: int
    delivered: int
    dead_lettered: int
    failed: int = 0
    in_flight: int = 0
    duration_seconds: float = 0.0

    @property
    def lost(self) -> int:
        """Lines received but neither delivered nor dead-lettered."""
        return self.received - self.delivered - self.dead_lettered

    def problems(self) -> list[str]:
        """Return why this run lost events, or an empty list when every line is accounted for."""
        found = []
        if self.failed:
            found.append(f"{self.failed} failed delivery")
        if self.in_flight:
            found.append(f"{self.in_flight} still in flight at exit")
        if self.lost and self.lost != self.failed + self.in_flight:
            found.append(f"{self.lost} received but neither delivered nor dead-lettered")
        return found

    def as_dict(self) -> dict[str, int | float]:
        return asdict(self)


def parse(line: str) -> Summary | None:
    """Return the summary a line holds, or None when the line is not a summary (a log line, say)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k, 0), int) for k in _COUNTS):
        return None
    if "msg" in data or "level" in data:  # a log record that repeats the counts, not the summary itself
        return None
    if not all(k in data for k in ("received", "delivered", "dead_lettered")):
        return None
    duration = data.get("duration_seconds", 0.0)
    return Summary(
        received=data["received"],
        delivered=data["delivered"],
        dead_lettered=data["dead_lettered"],
        failed=data.get("failed", 0),
        in_flight=data.get("in_flight", 0),
        duration_seconds=float(duration) if isinstance(duration, (int, float)) else 0.0,
    )


def last(lines: Iterable[str]) -> Summary | None:
    """Return the last summary among lines (ECS interleaves stdout and stderr in one log stream)."""
    found = None
    for line in lines:
        summary = parse(line)
        if summary is not None:
            found = summary
    return found
