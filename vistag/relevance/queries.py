"""Query sets: each query an id and a text, an image (path or URL), or both.

Files: CSV or TSV with a header (``id``, ``text``, ``image``; ``query`` is read as ``text``),
JSON (a list of objects) or JSON lines.

Examples:
    >>> [q.id for q in parse_queries([{"id": "q1", "text": "red dress"}])]
    ['q1']
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vistag.errors import ConfigError, NotFoundError


@dataclass(frozen=True)
class Query:
    """One query of a query set.

    Attributes:
        id: its id (judgments refer to it).
        text: what a shopper typed (empty: none).
        image: a photo: a path (relative to the query file's folder) or an http(s) URL (empty: none).
        product: the product id a query by product (``similar``) starts from, also left out of its results.
    """

    id: str
    text: str = ""
    image: str = ""
    product: str = ""

    def to_dict(self) -> dict[str, str]:
        """JSON-friendly form."""
        return asdict(self)


def parse_queries(items: Iterable[Mapping[str, Any]], where: str = "query set") -> list[Query]:
    """Queries from row dicts; ``where`` names the source in errors.

    Raises:
        ConfigError: a row without an id, without text, image or product, or a repeated id.
    """
    out: list[Query] = []
    seen: set[str] = set()
    for n, item in enumerate(items, 1):
        qid = str(item.get("id") or item.get("query_id") or "").strip()
        text = str(item.get("text") or item.get("query") or "").strip()
        image = str(item.get("image") or "").strip()
        product = str(item.get("product") or "").strip()
        if not qid:
            raise ConfigError(f"{where}, query {n}: no id")
        if not (text or image or product):
            raise ConfigError(f"{where}, query {qid!r}: no text, image or product")
        if qid in seen:
            raise ConfigError(f"{where}, query {qid!r}: the id is used twice")
        seen.add(qid)
        out.append(Query(qid, text, image, product))
    return out


def read_queries(path: str | Path) -> list[Query]:
    """Read a query set file (see the module docstring); relative image paths are resolved against its folder.

    Raises:
        NotFoundError: no such file.
        ConfigError: a malformed file or query (the message names the file and the query).
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"query set {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            items = json.loads(text)
            if not isinstance(items, list):
                raise ConfigError(f"{path}: a JSON query set is a list of objects")
        elif path.suffix.lower() in (".jsonl", ".ndjson"):
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
            items = list(csv.DictReader(text.splitlines(), delimiter=delimiter))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    queries = parse_queries(items, str(path))
    return [Query(q.id, q.text, _resolve(q.image, path.parent), q.product) if q.image else q for q in queries]


def _resolve(image: str, folder: Path) -> str:
    if "://" in image or Path(image).is_absolute():
        return image
    return str(folder / image)


def write_queries(queries: Iterable[Query], path: str | Path) -> Path:
    """Write a query set as JSON lines (what :func:`read_queries` reads back)."""
    path = Path(path)
    path.write_text("".join(json.dumps(q.to_dict()) + "\n" for q in queries), encoding="utf-8")
    return path


def sample_queries(
    rows: Sequence[Mapping[str, Any]],
    count: int = 300,
    *,
    kind: str = "text",
    seed: int = 0,
    split_column: str | None = "split",
    id_column: str = "id",
    title_column: str = "productDisplayName",
    image_column: str = "file",
    images: str | Path | None = None,
) -> list[Query]:
    """A query set drawn from a catalog's held-out rows, as vistag's relevance benchmark draws it.

    ``count`` rows are drawn (seeded) from the rows whose ``split_column`` is ``test`` (all rows
    without a split column); each query keeps its row's id as ``product`` (left out of results, and
    what label judgments compare with). ``kind``:

    * ``text`` -- the title as a shopper might type it (the leading word, usually the brand, and a
      third of the other words dropped, seeded: :func:`vistag.models.text_image.query_like`);
    * ``title`` -- the full title (known-item search);
    * ``image`` -- the row's photo (``images`` is the folder it is in);
    * ``product`` -- the product itself (``image``/``similar`` strategies use its stored vector).

    Raises:
        ConfigError: an unknown kind, or no held-out rows.
    """
    import random

    if kind not in ("text", "title", "image", "product"):
        raise ConfigError(f"query kind must be text, title, image or product, not {kind!r}")
    if kind == "image" and not (images and Path(images).is_dir()):
        raise ConfigError("image queries need the folder the catalog's photos are in (use kind 'product' for a .tar)")
    pool = [r for r in rows if not split_column or str(r.get(split_column, "")).strip().lower() == "test"]
    if split_column and not pool and rows and split_column not in rows[0]:
        pool = list(rows)
    if not pool:
        raise ConfigError("no held-out rows to draw queries from")
    rng = random.Random(seed)
    picked = rng.sample(pool, min(count, len(pool)))
    out = []
    for n, row in enumerate(picked):
        pid = str(row[id_column])
        if kind == "text":
            from vistag.models.text_image import query_like

            out.append(Query(f"q{n}", query_like(str(row.get(title_column) or ""), rng), product=pid))
        elif kind == "title":
            out.append(Query(f"q{n}", str(row.get(title_column) or ""), product=pid))
        elif kind == "image":
            ref = str(row.get(image_column) or "")
            out.append(Query(f"q{n}", image=str(Path(str(images)) / ref), product=pid))
        else:
            out.append(Query(f"q{n}", product=pid))
    return out
