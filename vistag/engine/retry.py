"""Capped exponential backoff for every engine call, and the mapping of client errors.

The official clients retry at once, with no pause, and only where their owner
configured it. vistag adds its own layer on top of whatever client it is given:
429/502/503/504 answers and lost connections are retried after
``min(max_backoff, initial_backoff * 2**attempt)`` seconds (with jitter), then
reported as :class:`~vistag.errors.EngineUnavailable`, which every long run turns
into a clean, resumable stop. Errors of both libraries become vistag's own
:class:`~vistag.errors.EngineError` with the status, a short reason, and no secret.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from vistag.errors import EngineError, EngineUnavailable

logger = logging.getLogger(__name__)

#: Statuses that mean "try again later" on both engines.
RETRY_STATUSES = frozenset({429, 502, 503, 504})

T = TypeVar("T")


@dataclass
class RetryPolicy:
    """How often and how patiently a call is retried.

    Attributes:
        max_retries: retries after the first try (0: fail at once).
        initial_backoff: seconds before the first retry.
        max_backoff: cap of one pause.
        sleep: the pause function (tests pass a recorder).

    Examples:
        >>> RetryPolicy(max_retries=2, initial_backoff=0.5).delay(3) <= 0.5 * 8
        True
    """

    max_retries: int = 8
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (jittered to 50-100 %)."""
        base = min(self.max_backoff, self.initial_backoff * (2**attempt))
        return base * (0.5 + random.random() / 2)

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)``; retry what :func:`map_error` calls retryable.

        Args:
            what: the request, for messages (``"POST products/_msearch"``).
            fn: the client method to call.
            *args: its positional arguments.
            **kwargs: its keyword arguments.

        Raises:
            EngineUnavailable: still failing after ``max_retries`` retries.
            EngineError: any other error of the engine, at once.
        """
        attempt = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                error = map_error(exc, what)
                if error is None:
                    raise
                if not isinstance(error, EngineUnavailable):
                    raise error from None
                if attempt >= self.max_retries:
                    raise EngineUnavailable(
                        f"giving up after {attempt + 1} tries: {error}", error.status, error.body
                    ) from None
                pause = self.delay(attempt)
                logger.warning("%s; retry %d of %d in %.1fs", error, attempt + 1, self.max_retries, pause)
                self.sleep(pause)
                attempt += 1


def map_error(exc: BaseException, what: str) -> EngineError | None:
    """Turn an exception of ``elasticsearch``/``opensearch-py``/``elastic-transport`` into vistag's.

    Returns ``None`` for exceptions that are not a client's (programming errors are
    not swallowed). Retryable failures come back as :class:`EngineUnavailable`.

    Examples:
        >>> map_error(ValueError("x"), "GET /") is None
        True
    """
    module = type(exc).__module__.split(".")[0]
    if module not in ("elasticsearch", "opensearchpy", "elastic_transport"):
        return None
    status = _status_of(exc)
    name = type(exc).__name__
    if status is None:  # no HTTP answer: connection refused, reset, timeout, TLS
        if "SSL" in name or "TLS" in name:
            return EngineError(f"{what}: TLS error ({name}); check --ca-cert or the server certificate")
        return EngineUnavailable(f"{what}: no answer ({name})")
    body = _body_of(exc)
    message = f"{what} -> HTTP {status}: {error_reason(body)}"
    if status in RETRY_STATUSES:
        return EngineUnavailable(message, status, body)
    if status == 401:
        message += " (check the credentials: API key, user/password, bearer token or AWS keys)"
    elif status == 403:
        message += " (the credentials lack a privilege this call needs)"
    return EngineError(message, status, body)


def _status_of(exc: BaseException) -> int | None:
    meta = getattr(exc, "meta", None)  # elasticsearch 8/9 ApiError
    status = getattr(meta, "status", None)
    if status is None:
        status = getattr(exc, "status_code", None)  # opensearch-py TransportError ('N/A' without answer)
    if status is None and hasattr(exc, "status"):
        status = exc.status
    return status if isinstance(status, int) and status > 0 else None


def _body_of(exc: BaseException) -> Any:
    body = getattr(exc, "body", None)
    if body is None:
        body = getattr(exc, "info", None)
    return body


def error_reason(payload: Any) -> str:
    """A one-line reason from an engine's error body (``type: reason`` of the root cause).

    Examples:
        >>> error_reason({"error": {"root_cause": [{"type": "x", "reason": "y"}]}})
        'x: y'
    """
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            root = (err.get("root_cause") or [err])[0]
            return f"{root.get('type', 'error')}: {root.get('reason', '')}"[:500]
        if err:
            return str(err)[:500]
    return str(payload)[:500]
