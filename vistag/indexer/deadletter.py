"""Dead-letter file: one JSON line per row that could not be indexed, with the reason."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path


class DeadLetterWriter:
    """Appends ``{"time", "line", "id", "stage", "reason", "row"}`` lines to a JSONL file.

    The file is opened lazily (no file when nothing fails) and flushed after every
    line, so it is complete even if the process dies.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.count = 0
        self._fh = None
        self._lock = threading.Lock()

    def write(self, line: int | None, item_id: str | None, stage: str, reason: str, row: object) -> None:
        """Record one bad row."""
        record = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "line": line, "id": item_id, "stage": stage, "reason": reason, "row": row,
        }
        with self._lock:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8")
            self._fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            self._fh.flush()
            self.count += 1

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
