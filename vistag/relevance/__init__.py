"""Relevance a shop measures on its own catalog: query sets and judgments in, every strategy side by side with
metrics, significance tests and latency out.

The modules, in the order a run flows:

* :mod:`~vistag.relevance.queries` -- query sets (text and/or an image, with an id);
* :mod:`~vistag.relevance.judgments` -- graded judgments from TREC qrels, CSV, JSON, the catalog's
  labels, or a click log (clicks over expected clicks);
* :mod:`~vistag.relevance.strategies` -- what is compared: vistag's query types, the hybrids, and
  any stored search template with its parameters;
* :mod:`~vistag.relevance.stats` -- per-query metrics, wins/ties/losses, paired significance tests
  with a correction for several comparisons, confidence intervals;
* :mod:`~vistag.relevance.evaluate` -- :func:`~vistag.relevance.evaluate.evaluate` and
  :func:`~vistag.relevance.evaluate.tune` (fusion weights chosen on some queries, reported on the rest);
* :mod:`~vistag.relevance.report` -- Markdown, JSON and a PNG;
* :mod:`~vistag.relevance.rank_eval` -- the same run through the engine's ``_rank_eval`` API.

Examples:
    >>> from vistag.relevance.stats import randomisation_test
    >>> round(randomisation_test([0.1, 0.2, 0.3, 0.4], [0.0, 0.1, 0.2, 0.3]), 3)
    0.125
"""
