"""A relevance run as Markdown, JSON and a PNG a person would rather look at than a table.

The PNG (Pillow, no plotting library) has two panels: each strategy's mean of the chosen
metric with its 95 % bootstrap interval, and each strategy's per-query differences from the
baseline (one tick per query, sorted), so a lead carried by a few queries shows as such.

Examples:
    >>> print(markdown(result.to_dict()).splitlines()[0])  # doctest: +SKIP
    | strategy | queries | ndcg@10 | ...
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def _p(value: float | None) -> str:
    if value is None:
        return ""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def markdown(run: Mapping[str, Any], metrics: list[str] | None = None) -> str:
    """The run's table: per strategy the mean (95 % interval) of each metric, the difference from the
    baseline with wins/ties/losses and the Holm-corrected p-value of the randomisation test, latency p50/p95.
    """
    metrics = metrics or list(run["metrics"])
    baseline = run["baseline"]
    head = ["strategy", "queries", *metrics, "p50 ms", "p95 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in run["summary"].items():
        cells = [name + (" (baseline)" if name == baseline else ""), str(s["queries"])]
        for m in metrics:
            mean, (lo, hi) = s[m]["mean"], s[m]["ci95"]
            cell = f"{mean:.3f} ({lo:.3f}–{hi:.3f})"
            c = run["comparisons"].get(name, {}).get(m)
            if c:
                cell += f"; {c['delta']:+.3f}, {c['wins']}/{c['ties']}/{c['losses']}, p {_p(c['p_holm'])}"
            cells.append(cell)
        lat = s["latency_ms"]
        cells += [f"{lat['p50']:.1f}" if lat["p50"] is not None else "", f"{lat['p95']:.1f}" if lat["p95"] else ""]
        lines.append("| " + " | ".join(cells) + " |")
    info = run.get("info", {})
    notes = [
        "",
        f"Each cell: mean (95 % bootstrap interval); against {baseline}: mean difference, wins/ties/losses "
        f"over the queries both answered, and the p-value of the two-sided paired randomisation test "
        f"({info.get('permutations', '?')} sign flips) after Holm's correction over the "
        f"{max(1, len(run['summary']) - 1)} comparisons of that metric (paired t-test p-values in the JSON).",
        f"Engine {info.get('engine', '?')}, index {info.get('index', '?')}: {info.get('judged_queries', '?')} "
        f"judged queries of {info.get('queries', '?')}, {info.get('judgments', '?')} judgments; latency as the "
        "Python client saw it.",
    ]
    return "\n".join(lines + notes) + "\n"


def plot(run: Mapping[str, Any], path: str | Path, metric: str | None = None) -> Path:
    """Write the PNG (see the module docstring) for ``metric`` (default: the first, nDCG@k)."""
    metric = metric or run["metrics"][0]
    names = list(run["summary"])
    baseline = run["baseline"]
    per_query = {s["strategy"]["name"]: s["per_query"] for s in run["strategies"]}
    font = ImageFont.load_default()
    label_w = 12 + 6 * max(len(n) for n in names)
    row_h, bar_w, diff_w = 22, 360, 360
    width = label_w + bar_w + diff_w + 60
    height = 60 + row_h * len(names) + 40
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 8), f"{metric}: mean with 95 % interval", fill="black", font=font)
    draw.text((label_w + bar_w + 40, 8), f"per query, minus {baseline} (sorted)", fill="black", font=font)
    x0, x1 = label_w, label_w + bar_w
    d0, d1 = x1 + 40, x1 + 40 + diff_w
    for i, name in enumerate(names):
        y = 40 + i * row_h
        s = run["summary"][name][metric]
        draw.text((8, y + 4), name, fill="black", font=font)
        lo, hi = s["ci95"]
        draw.rectangle([x0, y + 4, x0 + s["mean"] * bar_w, y + row_h - 4], fill=(70, 130, 180))
        draw.line([x0 + lo * bar_w, y + row_h / 2, x0 + hi * bar_w, y + row_h / 2], fill="black", width=2)
        draw.text((x0 + max(s["mean"], hi) * bar_w + 6, y + 4), f"{s['mean']:.3f}", fill="black", font=font)
        if name == baseline:
            continue
        shared = [q for q in per_query[baseline] if q in per_query[name]]
        diffs = np.sort([per_query[name][q][metric] - per_query[baseline][q][metric] for q in shared])
        draw.line([d0, y + row_h / 2, d1, y + row_h / 2], fill=(200, 200, 200))
        for j, d in enumerate(diffs):
            x = d0 + (j + 0.5) * diff_w / max(1, len(diffs))
            colour = (34, 139, 34) if d > 0 else (200, 50, 50) if d < 0 else (160, 160, 160)
            length = 0.0 if d == 0 else float(np.sign(d)) * max(2.0, min(1.0, abs(d)) * (row_h / 2 - 2))
            draw.line([x, y + row_h / 2, x, y + row_h / 2 - length], fill=colour, width=2)
    for frac in (0.0, 0.5, 1.0):
        draw.text((x0 + frac * bar_w - 6, height - 30), f"{frac:.1f}", fill="black", font=font)
    path = Path(path)
    img.save(path)
    return path


def comparison_markdown(
    comparison: Mapping[str, Mapping[str, Mapping[str, Any]]], permutations: int | None = None
) -> str:
    """A table of :func:`~vistag.relevance.evaluate.compare_runs`: per strategy and metric, before -> after,
    the difference with wins/ties/losses and the Holm-corrected p-value.

    Examples:
        >>> c = {"image": {"ndcg@10": {"queries": 3, "before_mean": 0.5, "after_mean": 0.6, "delta": 0.1,
        ...                            "wins": 2, "ties": 1, "losses": 0, "p": 0.5, "p_holm": 0.5}}}
        >>> print(comparison_markdown(c).splitlines()[2])
        | image | 3 | 0.500 -> 0.600; +0.100, 2/1/0, p 0.500 |
    """
    metrics = list(dict.fromkeys(m for by_metric in comparison.values() for m in by_metric))
    head = ["strategy", "queries", *metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, by_metric in comparison.items():
        queries = next(iter(by_metric.values()))["queries"] if by_metric else 0
        cells = [name, str(queries)]
        for m in metrics:
            c = by_metric.get(m)
            cells.append(
                f"{c['before_mean']:.3f} -> {c['after_mean']:.3f}; {c['delta']:+.3f}, "
                f"{c['wins']}/{c['ties']}/{c['losses']}, p {_p(c['p_holm'])}"
                if c
                else ""
            )
        lines.append("| " + " | ".join(cells) + " |")
    flips = f"{permutations} sign flips, " if permutations else ""
    note = (
        "\nEach cell: the mean before -> after on the queries both runs answered; the difference, wins/ties/losses "
        f"of the later run, and the p-value of the two-sided paired randomisation test ({flips}Holm's correction "
        f"over the {len(comparison)} strategies compared; paired t-test p-values in the JSON)."
    )
    return "\n".join([*lines, note]) + "\n"


def write_report(run: Mapping[str, Any], folder: str | Path, name: str = "relevance") -> dict[str, Path]:
    """Write ``NAME.json``, ``NAME.md`` and ``NAME.png`` into ``folder``; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / f"{name}.json", "markdown": folder / f"{name}.md", "png": folder / f"{name}.png"}
    paths["json"].write_text(json.dumps(run, indent=1, default=str))
    paths["markdown"].write_text(markdown(run))
    plot(run, paths["png"])
    return paths


def read_run(path: str | Path) -> dict[str, Any]:
    """A run written by :func:`write_report` (its JSON)."""
    return dict(json.loads(Path(path).read_text()))
