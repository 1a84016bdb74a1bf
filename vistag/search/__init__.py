"""Keyword, tag and image queries over a vistag index, identical on both engines."""

from vistag.search.queries import Hit, Searcher

__all__ = ["Hit", "Searcher"]
