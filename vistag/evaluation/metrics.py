"""Classification and tagging metrics, as the papers listed below define them.

* single-label (one task): top-k accuracy (ACC) and mean per-class accuracy
  (MACC, Chen et al.), confusion matrix, per-class precision/recall (Li et al.);
* ranked tags (kNN tagging preprint Table 1): precision, recall and F1 at K of a ranked tag list
  against the true tag set, averaged over images;
* tag sets (Sahay et al.): Hamming score (mean Jaccard of predicted and true sets) and
  exact-match ratio.

All functions ignore rows whose label is missing (``-1``).

References:
    "Automatic tag assignment for e-commerce products from visual features" (preprint; kNN tagging with
    VGG-19 fc7 features).
    A. Sahay, A. Bagree, K. Susanto, N. Padiyara, U. Chaturvedi, "Image Tagging for Search and Recommendation".
    P. Gutierrez, P.-A. Sondag, P. Butkovic, M. Lacy, J. Berges, F. Bertrand, A. Knudson,
    "Deep Learning for Automated Tagging of Fashion Images".
    F. Li, S. Kant, S. Araki, S. Bangera, S. S. Shukla, "Neural Networks for Fashion Image Classification and
    Visual Search".
    Z. Chen, S. Ai, C. Jia, "Structure-Aware Deep Learning for Product Image Classification", ACM TOMM 15(1s), 2019.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def topk_accuracy(ranked: np.ndarray, y: np.ndarray, k: int) -> float:
    """Share of labelled rows whose label is among the first ``k`` of ``ranked`` ``(N, >=k)``."""
    known = y >= 0
    if not known.any():
        return float("nan")
    return float((ranked[known, :k] == y[known, None]).any(axis=1).mean())


def confusion_matrix(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``(C, C)`` counts, rows = true class, columns = predicted class."""
    known = y >= 0
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y[known], pred[known]), 1)
    return cm


def per_class(cm: np.ndarray, classes: Sequence[str]) -> list[dict]:
    """Support, precision, recall and F1 of each class from a confusion matrix."""
    out = []
    for i, name in enumerate(classes):
        tp = int(cm[i, i])
        support = int(cm[i].sum())
        predicted = int(cm[:, i].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append(
            {
                "class": name,
                "support": support,
                "precision": round(precision, 4),
                "recall": round(recall, 4),
                "f1": round(f1, 4),
            }
        )
    return out


def mean_class_accuracy(cm: np.ndarray) -> float:
    """MACC: recall averaged over the classes that occur (Chen et al.)."""
    support = cm.sum(axis=1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float((np.diag(cm)[present] / support[present]).mean())


def classification_report(ranked: np.ndarray, y: np.ndarray, classes: Sequence[str]) -> dict:
    """ACC@1, ACC@5, MACC, the confusion matrix and per-class PR of one task.

    Args:
        ranked: ``(N, k)`` predicted class indexes, best first.
        y: ``(N,)`` true class indexes, ``-1`` for missing.
        classes: class names.
    """
    known = y >= 0
    cm = confusion_matrix(y, ranked[:, 0], len(classes))
    return {
        "n": int(known.sum()),
        "classes": len(classes),
        "top1": round(topk_accuracy(ranked, y, 1), 4),
        "top3": round(topk_accuracy(ranked, y, min(3, ranked.shape[1])), 4),
        "top5": round(topk_accuracy(ranked, y, min(5, ranked.shape[1])), 4),
        "macc": round(mean_class_accuracy(cm), 4),
        "confusion": cm,
        "per_class": per_class(cm, classes),
    }


def ranked_tag_prf(
    ranked: Sequence[Sequence[str]], truth: Sequence[set[str]], ks: Sequence[int] = (1, 3, 5, 7)
) -> dict:
    """Precision, recall and F1 at each K of ranked tag lists (kNN tagging preprint Table 1).

    P@K = |top-K ∩ truth| / K, R@K = |top-K ∩ truth| / |truth|, F1 from the mean P and R,
    over the images that have at least one true tag.
    """
    out = {}
    pairs = [(r, t) for r, t in zip(ranked, truth) if t]
    for k in ks:
        if not pairs:
            out[str(k)] = {"precision": float("nan"), "recall": float("nan"), "f1": float("nan")}
            continue
        hits = np.array([len(set(r[:k]) & t) for r, t in pairs], dtype=np.float64)
        p = float((hits / k).mean())
        r = float((hits / np.array([len(t) for _, t in pairs])).mean())
        out[str(k)] = {
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
        }
    return out


def set_metrics(predicted: Sequence[set[str]], truth: Sequence[set[str]]) -> dict:
    """Hamming score (mean |P∩T|/|P∪T|), exact-match ratio and micro P/R/F1 of tag sets (Sahay et al.)."""
    pairs = [(p, t) for p, t in zip(predicted, truth) if t]
    if not pairs:
        return {"n": 0, "hamming_score": float("nan"), "exact_match": float("nan")}
    jacc = [len(p & t) / len(p | t) for p, t in pairs]
    tp = sum(len(p & t) for p, t in pairs)
    npred = sum(len(p) for p, _ in pairs)
    ntrue = sum(len(t) for _, t in pairs)
    precision = tp / npred if npred else 0.0
    recall = tp / ntrue if ntrue else 0.0
    return {
        "n": len(pairs),
        "hamming_score": round(float(np.mean(jacc)), 4),
        "exact_match": round(float(np.mean([p == t for p, t in pairs])), 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / (precision + recall) if precision + recall else 0.0, 4),
        "mean_tags_predicted": round(npred / len(pairs), 3),
        "mean_tags_true": round(ntrue / len(pairs), 3),
    }


def coverage_vs_error(confidence: np.ndarray, correct: np.ndarray, thresholds: Sequence[float]) -> list[dict]:
    """Coverage (share of rows kept) and error rate among the kept rows at each confidence threshold (Gutierrez et al.
    Table 4).
    """
    out = []
    for t in thresholds:
        keep = confidence >= t
        n = int(keep.sum())
        out.append(
            {
                "threshold": t,
                "coverage": round(n / max(len(keep), 1), 4),
                "error": round(float(1 - correct[keep].mean()) if n else 0.0, 4),
                "kept": n,
            }
        )
    return out
