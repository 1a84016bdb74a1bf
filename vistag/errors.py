"""Exceptions shared across vistag.

Every error a user can cause is a :class:`VistagError` whose message names the
thing at fault (a row, a file, a URL, a setting, a request) so the CLI can print it
as is; anything else that escapes is a bug and keeps its traceback.

Examples:
    >>> issubclass(ConfigError, VistagError) and issubclass(ConfigError, ValueError)
    True
"""

from __future__ import annotations

from typing import Any


class VistagError(Exception):
    """Base class of every error vistag raises on purpose."""


class ConfigError(VistagError, ValueError):
    """A setting, flag, argument or file given by the user is invalid."""


class NotFoundError(VistagError, LookupError):
    """Something that was asked for by name does not exist: an index, a product, a model directory."""


class ImageLoadError(VistagError):
    """An image could not be read or decoded; the message names it and is the dead-letter reason."""


class EngineError(VistagError):
    """The search engine answered with an error.

    Attributes:
        status: the HTTP status (``None`` when no answer came).
        body: the engine's error body, or the documents of a bulk request that was not confirmed.
    """

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class EngineUnavailable(EngineError):
    """The search engine could not be reached (connection refused, timeout, 5xx storm)."""


class LocalEngineError(VistagError):
    """A local engine node could not be downloaded, installed, started or stopped."""


class BulkIndexError(VistagError):
    """Some documents could not be indexed after all retries.

    Attributes:
        errors: the failed items, each with the original document under ``"doc"``.
    """

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = errors
