"""Measuring what vistag produces: tagger accuracy, coverage and robustness on labelled rows, and ranking metrics of
result lists.

* :mod:`~vistag.evaluation.metrics` -- top-k accuracy, MACC, P/R/F1 of tag sets;
* :mod:`~vistag.evaluation.evaluate` -- ``vistag eval`` (:func:`evaluate_model`, torch);
* :mod:`~vistag.evaluation.ranking` -- nDCG@k, recall@k, precision@k, reciprocal rank;
* :mod:`~vistag.evaluation.ceiling` -- the ceiling the labels allow (byte-identical photos under several ids);
* :mod:`~vistag.evaluation.report`, :mod:`~vistag.evaluation.plots` -- Markdown and PNG.

Examples:
    >>> from vistag.evaluation.ranking import capped_recall_at_k
    >>> capped_recall_at_k([True, False, True], n_relevant=2, k=10)
    1.0
"""
