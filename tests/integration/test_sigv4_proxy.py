"""AWS SigV4 through the official client: a loopback proxy in front of the local OpenSearch node
checks every request's signature with botocore's own signer and refuses unsigned or badly
signed ones, bulk threads included (they must use the user's signer too)."""

from __future__ import annotations

import re

import pytest

from tests.integration.conftest import start_node, wipe
from tests.integration.proxy import ForwardingProxy

botocore = pytest.importorskip("botocore")
pytest.importorskip("torch")

KEY, SECRET, REGION = "AKIAVISTAGTEST000000", "vistag/test/secret/key/000000000000000000", "eu-west-1"
AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
    r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$"
)


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
    request = AWSRequest(
        method=method,
        url=f"http://{headers['Host']}{path}",
        data=body,
        headers={name: headers[name] for name in signed},
    )
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials(KEY, SECRET), "es", REGION)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return expected == match.group(6)


FORBIDDEN = (403, b'{"message":"The request signature we calculated does not match the signature you provided."}')


def _check_signature(method, path, headers, body):
    return None if signature_ok(method, path, headers, body) else FORBIDDEN


@pytest.fixture
def proxy():
    node = start_node("opensearch")
    wipe(node)
    with ForwardingProxy(node.url, _check_signature) as server:
        yield server


@pytest.mark.opensearch
def test_unsigned_and_badly_signed_requests_are_refused(proxy):
    from botocore.credentials import Credentials
    from opensearchpy import OpenSearch, Urllib3AWSV4SignerAuth

    from vistag.engine.client import EngineClient
    from vistag.engine.retry import RetryPolicy
    from vistag.errors import EngineError

    with pytest.raises(EngineError, match="HTTP 403"):
        EngineClient(OpenSearch(proxy.url), retry=RetryPolicy(max_retries=0)).info()
    wrong = OpenSearch(proxy.url, http_auth=Urllib3AWSV4SignerAuth(Credentials(KEY, "wrong-secret"), REGION, "es"))
    with pytest.raises(EngineError, match="HTTP 403") as exc:
        EngineClient(wrong, retry=RetryPolicy(max_retries=0)).info()
    assert "wrong-secret" not in str(exc.value)
    assert proxy.seen and all(refused for _, _, refused in proxy.seen)


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
    code = main(
        [
            "-q",
            "index",
            "--url",
            proxy.url,
            "--aws-sigv4",
            "es",
            "--aws-region",
            REGION,
            "--catalog",
            str(catalog),
            "--images",
            str(images),
            "--bulk-threads",
            "3",
            "--chunk-size",
            "10",
            "--dead-letter",
            str(tmp_path / "dead.jsonl"),
        ]
    )
    assert code == 0
    bulks = [p for p in proxy.paths() if p == "/_bulk"]
    assert len(bulks) >= len(rows) // 10  # every chunk went through the proxy ...
    assert not proxy.paths(intercepted=True), proxy.paths(intercepted=True)[:3]  # ... signed
    assert {"/_bulk", "/products/_refresh"} <= set(proxy.paths())
    assert (
        main(
            [
                "-q",
                "search",
                "--url",
                proxy.url,
                "--aws-sigv4",
                "es",
                "--aws-region",
                REGION,
                "--query",
                rows[0]["productDisplayName"],
            ]
        )
        == 0
    )
    assert not proxy.paths(intercepted=True)
