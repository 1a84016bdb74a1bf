"""Markdown rendering of an evaluation report (the JSON of :mod:`vistag.evaluation.evaluate`)."""

from __future__ import annotations


def _pct(value: float | None) -> str:
    return "–" if value is None or value != value else f"{100 * value:.1f}"


def markdown(report: dict) -> str:
    """A readable summary of the evaluation JSON."""
    lines = [
        f"# Evaluation of `{report.get('model')}`",
        "",
        f"Backbone `{report.get('backbone')}`, {report.get('test_rows')} test rows.",
        "",
    ]
    for title, key in (("Hierarchy levels (consistent decoding)", "levels"), ("Attributes", "attributes")):
        blocks = report.get(key) or {}
        if not blocks:
            continue
        lines += [
            f"## {title}",
            "",
            "| column | classes | n | top-1 % | top-3 % | top-5 % | MACC % | top-1 independent % |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, b in blocks.items():
            lines.append(
                f"| {name} | {b['classes']} | {b['n']} | {_pct(b['top1'])} | {_pct(b.get('top3'))} | {_pct(b['top5'])} "
                f"| {_pct(b['macc'])} "
                f"| {_pct(b.get('top1_independent'))} |"
            )
        lines.append("")
    tags = report.get("tags") or {}
    if tags:
        lines += [
            "## Tags: precision / recall / F1 at K (%)",
            "",
            "| tagger | " + " | ".join(f"P@{k} | R@{k} | F1@{k}" for k in (1, 3, 5, 7)) + " |",
            "|---|" + "---:|" * 12,
        ]
        for name, block in tags.items():
            cells = []
            for k in ("1", "3", "5", "7"):
                m = block["at_k"][k]
                cells += [_pct(m["precision"]), _pct(m["recall"]), _pct(m["f1"])]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "## Tag sets (thresholded)",
            "",
            "| tagger | thresholds | Hamming score % | exact match % | P % | R % | F1 % |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for name, block in tags.items():
            for how, m in block["sets"].items():
                lines.append(
                    f"| {name} | {how} | {_pct(m['hamming_score'])} | {_pct(m['exact_match'])} | "
                    f"{_pct(m.get('precision'))} | {_pct(m.get('recall'))} | {_pct(m.get('f1'))} |"
                )
        lines.append("")
    conf = report.get("confidence")
    if conf:
        lines += [
            f"## Coverage vs error ({conf['level']}, best-path confidence)",
            "",
            "| threshold | coverage % | error % |",
            "|---:|---:|---:|",
        ]
        lines += [f"| {r['threshold']} | {_pct(r['coverage'])} | {_pct(r['error'])} |" for r in conf["table"]]
        lines.append("")
    val = report.get("type_validator")
    if val:
        lines += [
            f"## Product-type validator ({val['level']}, radius = {val['quantile']} quantile)",
            "",
            "| radius scale | true claims flagged % | wrong claims flagged % |",
            "|---:|---:|---:|",
        ]
        lines += [
            f"| {r['radius_scale']} | {_pct(r['true_claims_flagged'])} | {_pct(r['wrong_claims_flagged'])} |"
            for r in val["table"]
        ]
        lines.append("")
    rob = report.get("robustness")
    if rob:
        lines += [
            f"## Robustness ({rob['images']} test images)",
            "",
            "| condition | leaf agreement % | tag set Jaccard % | identical tag sets % |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {r['condition']} | {_pct(r['leaf_agreement'])} | {_pct(r.get('tag_set_agreement'))} | "
            f"{_pct(r.get('tag_set_identical'))} |"
            for r in rob["conditions"]
        ]
        lines.append("")
    return "\n".join(lines)
