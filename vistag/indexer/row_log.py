"""The row log: what the reference pass learnt about each catalog row, read back in lockstep by the index pass."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vistag.catalog.rows import CatalogRow, MalformedRow
from vistag.models.embedding import ImageMeta


@dataclass
class RowRecord:
    """One line of the row log.

    Attributes:
        line: the row's line (or position) in the catalog.
        ok: the row was read and its image embedded.
        meta: its image's metadata (the vector is then in the embedding cache).
        ref_row: the row's own row in the reference set, -1 if not there.
    """

    line: int
    ok: bool
    meta: ImageMeta | None = None
    ref_row: int = -1

    def to_json(self) -> str:
        """One JSON line."""
        meta = self.meta.to_doc() if self.meta else None
        return json.dumps({"line": self.line, "ok": self.ok, "meta": meta, "ref_row": self.ref_row}) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RowRecord:
        """Parse a line written by :meth:`to_json`."""
        data = json.loads(text)
        meta = ImageMeta(**data["meta"]) if data["meta"] else None
        return cls(data["line"], data["ok"], meta, data["ref_row"])


def with_records(
    rows: Iterable[CatalogRow | MalformedRow], row_log: Path | None
) -> Iterator[tuple[CatalogRow | MalformedRow, RowRecord | None]]:
    """Pair each row with its :class:`RowRecord` (``None`` without a row log).

    Raises:
        RuntimeError: the catalog changed between the two passes.
    """
    if row_log is None:
        for row in rows:
            yield row, None
        return
    with open(row_log, encoding="utf-8") as log:
        for row in rows:
            record = RowRecord.from_json(log.readline())
            if record.line != row.line:
                raise RuntimeError(f"{row.line}: the catalog changed while it was being indexed; run again")
            yield row, record
