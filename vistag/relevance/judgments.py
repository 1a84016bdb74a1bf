"""Graded relevance judgments: ``{query id: {document id: grade}}`` (grade 0 = judged not relevant).

Read from the usual files, or derived:

* TREC qrels (``query_id 0 doc_id grade`` per line, whitespace-separated);
* CSV/TSV with a header ``query_id, doc_id, grade``;
* JSON: ``{"query_id": {"doc_id": grade}}`` or a list of ``{"query_id", "doc_id", "grade"}``;
* the catalog's labels (:func:`from_labels`): a document is relevant to a query product when
  the columns named agree (``articleType``: same type; ``articleType`` and ``baseColour``: same type
  and colour), grade 1;
* a click log (:func:`from_clicks`): ``query, doc_id, position, clicked`` rows, graded by clicks
  over expected clicks (COEC): a document's clicks divided by the clicks an average document
  would get at the positions it was shown at (the position's click-through rate over the whole
  log), so a document clicked at rank 8 counts for more than one clicked at rank 1.

Examples:
    >>> parse_qrels(chr(10).join(["q1 0 d1 2", "q1 0 d2 0"]))
    {'q1': {'d1': 2, 'd2': 0}}
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from vistag.errors import ConfigError, NotFoundError

#: ``{query id: {document id: grade}}``.
Judgments: TypeAlias = dict[str, dict[str, int]]


def parse_qrels(text: str, where: str = "qrels") -> Judgments:
    """TREC qrels text to judgments.

    Raises:
        ConfigError: a line that is not ``query iteration doc grade`` (named by its number).
    """
    out: Judgments = defaultdict(dict)
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 4:
            raise ConfigError(f"{where} line {n}: expected 'query_id iteration doc_id grade', got {line!r}")
        out[parts[0]][parts[2]] = _grade(parts[3], f"{where} line {n}")
    return dict(out)


def _grade(value: object, where: str) -> int:
    try:
        grade = float(str(value).strip())
    except ValueError:
        raise ConfigError(f"{where}: grade {value!r} is not a number") from None
    if grade < 0 or grade != int(grade):
        raise ConfigError(f"{where}: grade {value!r} is not a whole number >= 0")
    return int(grade)


def read_judgments(path: str | Path) -> Judgments:
    """Judgments from a qrels (``.qrels``/``.txt``), CSV/TSV or JSON file (see the module docstring).

    Raises:
        NotFoundError: no such file.
        ConfigError: a malformed line or row, named.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"judgments file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from None
        if isinstance(data, dict):
            return {
                str(q): {str(d): _grade(g, f"{path} query {q!r}") for d, g in docs.items()} for q, docs in data.items()
            }
        return _from_rows(data, str(path))
    if suffix in (".csv", ".tsv"):
        rows = list(csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ","))
        return _from_rows(rows, str(path))
    return parse_qrels(text, str(path))


def _from_rows(rows: Iterable[Mapping[str, Any]], where: str) -> Judgments:
    out: Judgments = defaultdict(dict)
    for n, row in enumerate(rows, 1):
        try:
            qid, doc, grade = row["query_id"], row["doc_id"], row["grade"]
        except (KeyError, TypeError):
            raise ConfigError(f"{where} row {n}: needs query_id, doc_id and grade") from None
        out[str(qid)][str(doc)] = _grade(grade, f"{where} row {n}")
    return dict(out)


def write_qrels(judgments: Judgments, path: str | Path) -> Path:
    """Write judgments as TREC qrels (what trec_eval and :func:`read_judgments` read)."""
    path = Path(path)
    lines = [f"{q} 0 {d} {g}\n" for q, docs in judgments.items() for d, g in docs.items()]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def from_labels(
    rows: Sequence[Mapping[str, Any]], query_products: Mapping[str, str], columns: Sequence[str], id_column: str = "id"
) -> Judgments:
    """Judgments from the catalog's labels: grade 1 for every other product whose ``columns`` all equal the
    query product's (the query product itself is left out: a query never finds itself).

    Args:
        rows: the catalog's rows.
        query_products: query id -> the product id the query was made from.
        columns: the label columns that must agree (e.g. ``["articleType"]`` or ``["articleType", "baseColour"]``).
        id_column: the product id column.

    Raises:
        ConfigError: a query product that is not in the catalog.

    Examples:
        >>> rows = [{"id": "1", "t": "a"}, {"id": "2", "t": "a"}, {"id": "3", "t": "b"}]
        >>> from_labels(rows, {"q": "1"}, ["t"])
        {'q': {'2': 1}}
    """
    by_key: dict[tuple, list[str]] = defaultdict(list)
    key_of: dict[str, tuple] = {}
    for row in rows:
        key = tuple(str(row.get(c) or "") for c in columns)
        pid = str(row.get(id_column, ""))
        key_of[pid] = key
        if all(key):
            by_key[key].append(pid)
    out: Judgments = {}
    for qid, product in query_products.items():
        if product not in key_of:
            raise ConfigError(f"query {qid!r}: product {product!r} is not in the catalog")
        out[qid] = {pid: 1 for pid in by_key.get(key_of[product], []) if pid != product}
    return out


#: Default COEC cut points: grade 1 for a clicked document under 1.0, 2 up to 2.0, 3 above.
COEC_GRADES = (1.0, 2.0)


def from_clicks(
    rows: Iterable[Mapping[str, Any]],
    query_ids: Mapping[str, str] | None = None,
    *,
    cuts: Sequence[float] = COEC_GRADES,
    min_impressions: int = 1,
    where: str = "click log",
) -> Judgments:
    """Graded judgments from a click log by clicks over expected clicks (COEC).

    For each position ``p`` the log's click-through rate is ``ctr[p]`` = clicks / impressions at
    ``p``. A (query, document) pair shown ``n`` times at positions ``p_1 .. p_n`` with ``c`` clicks
    has ``COEC = c / sum(ctr[p_i])``. Its grade is 0 without clicks, else 1 + the number of
    ``cuts`` its COEC reaches (default: 1 below 1.0, 2 below 2.0, 3 from 2.0). Pairs shown fewer
    than ``min_impressions`` times are left unjudged.

    Args:
        rows: ``query`` (or ``query_id``), ``doc_id``, ``position`` (1 = top), ``clicked`` (0/1, true/false).
        query_ids: query text -> query id, to key the judgments by a query set's ids (a row whose
            query is not in it is not judged, but still counts in the positions' click-through
            rates); ``None`` keys them by the ``query_id`` column or the text.
        cuts: ascending COEC thresholds of grades 2, 3, ...
        min_impressions: impressions a pair needs to be judged.
        where: the log's name in errors.

    Raises:
        ConfigError: a row without its fields, or with a position below 1 (named by its number).

    Examples:
        >>> log = [{"query": "q", "doc_id": "a", "position": 1, "clicked": 1},
        ...        {"query": "q", "doc_id": "b", "position": 2, "clicked": 0}]
        >>> from_clicks(log)
        {'q': {'a': 2, 'b': 0}}
    """
    shown: dict[tuple[str, str], list[int]] = defaultdict(list)
    clicks: dict[tuple[str, str], int] = defaultdict(int)
    pos_shown: dict[int, int] = defaultdict(int)
    pos_clicked: dict[int, int] = defaultdict(int)
    for n, row in enumerate(rows, 1):
        try:
            text = str(row.get("query_id") or row["query"]).strip()
            doc = str(row["doc_id"]).strip()
            position = int(row["position"])
            clicked = str(row["clicked"]).strip().lower() in ("1", "true", "yes", "y", "t")
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{where} row {n}: needs query, doc_id, a whole-number position and clicked") from None
        if position < 1:
            raise ConfigError(f"{where} row {n}: position {position} is below 1 (1 is the top)")
        pos_shown[position] += 1  # the position's click-through rate is the whole log's
        pos_clicked[position] += clicked
        if query_ids is not None:
            if text not in query_ids:
                continue
            text = query_ids[text]
        shown[(text, doc)].append(position)
        clicks[(text, doc)] += clicked
    ctr = {p: pos_clicked[p] / pos_shown[p] for p in pos_shown}
    out: Judgments = defaultdict(dict)
    for (qid, doc), positions in shown.items():
        if len(positions) < min_impressions:
            continue
        expected = sum(ctr[p] for p in positions)
        c = clicks[(qid, doc)]
        if c == 0:
            grade = 0
        else:
            coec = c / expected if expected > 0 else float("inf")
            grade = 1 + sum(coec >= cut for cut in cuts)
        out[qid][doc] = grade
    return dict(out)


def read_click_log(path: str | Path, query_ids: Mapping[str, str] | None = None, **options: Any) -> Judgments:
    """:func:`from_clicks` over a CSV/TSV file (header ``query,doc_id,position,clicked``) or JSON lines.

    Raises:
        NotFoundError: no such file.
        ConfigError: a malformed row, named.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"click log {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows: list[Mapping[str, Any]] = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        rows = list(csv.DictReader(text.splitlines(), delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    return from_clicks(rows, query_ids, where=str(path), **options)
