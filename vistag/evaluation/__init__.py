"""Metrics, threshold tuning and reports for the taggers (numpy only, no torch)."""
