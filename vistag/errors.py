"""Exceptions shared across vistag.

Every error a user can cause carries a message that names the thing at fault
(a row, a file, a URL, a setting) so the CLI can print it as is.
"""


class VistagError(Exception):
    """Base class of every error vistag raises on purpose."""


class ConfigError(VistagError):
    """A setting, flag or file given by the user is invalid."""


class EngineError(VistagError):
    """The search engine answered with an error."""

    def __init__(self, message: str, status: int | None = None, body: object = None) -> None:
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

    def __init__(self, message: str, errors: list[dict]) -> None:
        super().__init__(message)
        self.errors = errors
