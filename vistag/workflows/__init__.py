"""Workflows that join the indexer's catalog reading with the models: training,
evaluation and tagging of a labelled catalog (they import torch)."""
