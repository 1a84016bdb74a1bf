"""Fetching an image URL for the inference service, with no server-side request forgery.

A URL is fetched only when its host is on the operator's allow-list
(``--allow-url-host``: exact names or ``*.example.com``), every address the name
resolves to is a public one (loopback, private, link-local, shared, multicast and
reserved ranges are refused unless the operator allows private addresses), and
the connection goes to the address that was checked (no second DNS lookup that
could answer differently). Redirects are not followed blindly: each ``Location``
is checked like the first URL, up to a few hops. Size and time are bounded.

Only the standard library is used (``http.client`` over a pinned socket).

Examples:
    >>> policy = UrlPolicy(allowed_hosts=("images.example.com",))
    >>> policy.check_url("http://127.0.0.1/x.jpg")
    Traceback (most recent call last):
    ...
    vistag.service.fetch.UrlRefused: URL host '127.0.0.1' is not allowed (allowed: images.example.com)
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

REDIRECTS = (301, 302, 303, 307, 308)


class UrlRefused(ValueError):
    """The URL may not be fetched (scheme, host, address or redirect); nothing was fetched from it."""


class UrlFetchFailed(ValueError):
    """The URL was allowed but did not give an image (status, size, time, connection)."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class UrlPolicy:
    """Which image URLs the service may fetch, and how much of them.

    Attributes:
        allowed_hosts: host names (``images.example.com``) or suffix patterns
            (``*.example.com``); empty: no URL is fetched at all.
        allow_private: also fetch from loopback, private and link-local addresses
            (a service beside its image server on one machine).
        timeout: seconds for the whole fetch, redirects included.
        max_bytes: largest body read.
        max_redirects: redirect hops followed (each one checked).
    """

    allowed_hosts: tuple[str, ...] = ()
    allow_private: bool = False
    timeout: float = 5.0
    max_bytes: int = 16 * 1024 * 1024
    max_redirects: int = 3

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` (lower case, no port) is on the allow-list."""
        host = host.lower().rstrip(".")
        for pattern in self.allowed_hosts:
            pattern = pattern.lower().rstrip(".")
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]) and host != pattern[2:]:
                    return True
            elif host == pattern:
                return True
        return False

    def check_url(self, url: str) -> tuple[str, str, int, str]:
        """``(scheme, host, port, path)`` of an allowed URL.

        Raises:
            UrlRefused: not http(s), credentials in the URL, or a host not allowed.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UrlRefused(f"malformed URL {url[:200]!r}") from None
        if parts.scheme not in ("http", "https"):
            raise UrlRefused(f"URL scheme {parts.scheme!r} is not allowed (http or https only)")
        if parts.username or parts.password:
            raise UrlRefused("URLs with credentials are not allowed")
        host = (parts.hostname or "").lower()
        if not host:
            raise UrlRefused(f"URL {url[:200]!r} has no host")
        if not self.host_allowed(host):
            listed = ", ".join(self.allowed_hosts) or "none; start the service with --allow-url-host"
            raise UrlRefused(f"URL host {host!r} is not allowed (allowed: {listed})")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path

    def check_address(self, host: str, address: str) -> None:
        """Refuse an address that is not public, unless private addresses are allowed.

        Raises:
            UrlRefused: loopback, private, link-local, shared, multicast or reserved.
        """
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_global and not ip.is_multicast:
            return
        if self.allow_private and not ip.is_multicast and not ip.is_unspecified:
            return
        raise UrlRefused(
            f"URL host {host!r} resolves to {ip}, a non-public address "
            f"(start the service with --allow-private-urls to allow it)"
        )


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a checked address, with the URL's host name in ``Host``."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """TLS to a checked address; the certificate is verified against the URL's host name."""

    def connect(self) -> None:
        super().connect()
        self.sock = ssl.create_default_context().wrap_socket(self.sock, server_hostname=self.host)


def fetch_url(url: str, policy: UrlPolicy) -> bytes:
    """The body of ``url`` under ``policy``.

    Raises:
        UrlRefused: the URL, an address it resolves to, or a redirect is not allowed.
        UrlFetchFailed: not a 200, too large, too slow, or no connection.
    """
    deadline = time.monotonic() + policy.timeout
    for _hop in range(policy.max_redirects + 1):
        scheme, host, port, path = policy.check_url(url)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            raise UrlFetchFailed(f"URL host {host!r} does not resolve") from None
        addresses = [str(info[4][0]) for info in infos]
        for address in addresses:  # every answer must pass, so a mixed answer cannot slip through
            policy.check_address(host, address)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UrlFetchFailed(f"fetching {url[:200]!r} took over {policy.timeout:g}s")
        cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
        conn = cls(host, port, addresses[0], timeout=remaining)
        try:
            conn.request("GET", path, headers={"User-Agent": "vistag-service", "Accept": "image/*"})
            resp = conn.getresponse()
            if resp.status in REDIRECTS:
                location = resp.getheader("Location")
                if not location:
                    raise UrlFetchFailed(f"{url[:200]!r} answered HTTP {resp.status} with no Location")
                url = urljoin(url, location)
                continue
            if resp.status != 200:
                raise UrlFetchFailed(f"{url[:200]!r} answered HTTP {resp.status}")
            length = resp.getheader("Content-Length")
            if length and length.isdigit() and int(length) > policy.max_bytes:
                raise UrlFetchFailed(
                    f"{url[:200]!r} is {length} bytes, over the {policy.max_bytes}-byte limit", too_large=True
                )
            chunks: list[bytes] = []
            total = 0
            while True:
                if time.monotonic() > deadline:
                    raise UrlFetchFailed(f"fetching {url[:200]!r} took over {policy.timeout:g}s")
                chunk = resp.read(1 << 16)
                if not chunk:
                    return b"".join(chunks)
                total += len(chunk)
                if total > policy.max_bytes:
                    raise UrlFetchFailed(f"{url[:200]!r} is over the {policy.max_bytes}-byte limit", too_large=True)
                chunks.append(chunk)
        except (OSError, http.client.HTTPException) as exc:
            raise UrlFetchFailed(f"fetching {url[:200]!r} failed: {type(exc).__name__}") from None
        finally:
            conn.close()
    raise UrlFetchFailed(f"{url[:200]!r}: more than {policy.max_redirects} redirects")
