"""Dead letters: rows that could not be indexed, with the reason, never lost.

Each is ``{"time", "line", "id", "stage", "reason", "row"}``. With a path they are
appended to a JSONL file (opened only when the first row fails, flushed after every
line so it is complete even if the process dies); without one they are kept in
memory and returned in the run's summary, and nothing is written to disk.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO


class DeadLetters:
    """Collects bad rows in a JSONL file (``path``) or in :attr:`records`.

    Examples:
        >>> letters = DeadLetters()
        >>> letters.write(3, "42", "image", "image '42.jpg' does not exist", {"id": "42"})
        >>> letters.count, letters.records[0]["reason"]
        (1, "image '42.jpg' does not exist")
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.count = 0
        self.records: list[dict[str, object]] = []
        self._fh: TextIO | None = None
        self._lock = threading.Lock()

    def write(self, line: int | None, item_id: str | None, stage: str, reason: str, row: object) -> None:
        """Record one bad row."""
        record = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "line": line,
            "id": item_id,
            "stage": stage,
            "reason": reason,
            "row": row,
        }
        with self._lock:
            self.count += 1
            if self.path is None:
                self.records.append(record)
                return
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run, see close()
            self._fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
