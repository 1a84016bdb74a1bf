"""The demo storefront (``vistag serve``): a page and a small JSON API over a running engine."""

from vistag.serve.app import Storefront, serve, serve_in_thread

__all__ = ["Storefront", "serve", "serve_in_thread"]
