"""AWS SigV4 through the official client: a loopback proxy in front of the local OpenSearch node
checks every request's signature with botocore's own signer and refuses unsigned or badly
signed ones, bulk threads included (they must use the user's signer too)."""

from __future__ import annotations

import http.client
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from tests.integration.conftest import start_node, wipe

botocore = pytest.importorskip("botocore")
pytest.importorskip("torch")

KEY, SECRET, REGION = "AKIAVISTAGTEST000000", "vistag/test/secret/key/000000000000000000", "eu-west-1"
AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                  r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$")


def signature_ok(method: str, path: str, headers, body: bytes) -> bool:
    """Recompute the request's SigV4 signature with botocore and compare."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    match = AUTH.match(headers.get("Authorization", ""))
    if not match or match.group(1) != KEY or match.group(3) != REGION or match.group(4) != "es":
        return False
    signed = match.group(5).split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return False
    request = AWSRequest(method=method, url=f"http://{headers['Host']}{path}", data=body,
                         headers={name: headers[name] for name in signed})
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials(KEY, SECRET), "es", REGION)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return expected == match.group(6)


class SigV4Proxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.seen: list[tuple[str, str, bool, str]] = []  # method, path, signature ok, thread
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ok = signature_ok(self.command, self.path, self.headers, body)
        with self.server.lock:
            self.server.seen.append((self.command, self.path.split("?")[0], ok, self.headers.get("User-Agent", "")))
        if not ok:
            payload = b'{"message":"The request signature we calculated does not match the signature you provided."}'
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        upstream = http.client.HTTPConnection(self.server.upstream.hostname, self.server.upstream.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization", "connection")}
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        resp = upstream.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any


@pytest.fixture
def proxy():
    node = start_node("opensearch")
    wipe(node)
    server = SigV4Proxy(node.url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.mark.opensearch
def test_unsigned_and_badly_signed_requests_are_refused(proxy):
    from opensearchpy import OpenSearch, Urllib3AWSV4SignerAuth
    from botocore.credentials import Credentials

    from vistag.engine.client import EngineClient
    from vistag.engine.retry import RetryPolicy
    from vistag.errors import EngineError

    with pytest.raises(EngineError, match="HTTP 403"):
        EngineClient(OpenSearch(proxy.url), retry=RetryPolicy(max_retries=0)).info()
    wrong = OpenSearch(proxy.url, http_auth=Urllib3AWSV4SignerAuth(Credentials(KEY, "wrong-secret"), REGION, "es"))
    with pytest.raises(EngineError, match="HTTP 403") as exc:
        EngineClient(wrong, retry=RetryPolicy(max_retries=0)).info()
    assert "wrong-secret" not in str(exc.value)
    assert proxy.seen and not any(ok for _, _, ok, _ in proxy.seen)


@pytest.mark.opensearch
@pytest.mark.slow
def test_cli_signs_every_request_bulk_threads_included(proxy, small_catalog, tmp_path, monkeypatch):
    from vistag.cli.main import main

    catalog, images, rows = small_catalog
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    code = main(["-q", "index", "--url", proxy.url, "--aws-sigv4", "es", "--aws-region", REGION,
                 "--catalog", str(catalog), "--images", str(images), "--bulk-threads", "3", "--chunk-size", "10",
                 "--dead-letter", str(tmp_path / "dead.jsonl")])
    assert code == 0
    bulks = [s for s in proxy.seen if s[1] == "/_bulk"]
    assert len(bulks) >= len(rows) // 10  # every chunk went through the proxy ...
    assert all(ok for _, _, ok, _ in proxy.seen), [s for s in proxy.seen if not s[2]][:3]  # ... signed
    assert {"/_bulk", "/products/_refresh"} <= {path for _, path, _, _ in proxy.seen}
    assert main(["-q", "search", "--url", proxy.url, "--aws-sigv4", "es", "--aws-region", REGION,
                 "--query", rows[0]["productDisplayName"]]) == 0
    assert all(ok for _, _, ok, _ in proxy.seen)
