"""A secured Elasticsearch node: TLS on HTTP with a private CA, basic auth, and the API-key realm.

Elasticsearch's integ-test zip ships x-pack-security (OpenSearch's ships no security
plugin), so this is the secured cluster tested here: certificates are made with
openssl, the user with the distribution's own ``elasticsearch-users`` tool.
Credentials must never show in vistag's output or errors.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.conftest import write_slice
from vistag.cli.main import main
from vistag.local.node import LocalNode

pytestmark = [pytest.mark.elasticsearch, pytest.mark.slow]

USER, PASSWORD = "vistag-tester", "S3cret-pass-93817"


def make_certs(directory: Path) -> Path:
    """A private CA and a node certificate for 127.0.0.1/localhost (PEM)."""
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=vistag-test-ca",
    )
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "node.key", "-out", "node.csr", "-subj", "/CN=localhost")
    (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(
        "x509",
        "-req",
        "-in",
        "node.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "node.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
    return directory / "ca.pem"


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make test certificates")
    certs = tmp_path_factory.mktemp("certs")
    ca = make_certs(certs)

    def configure(config_dir: Path, env: dict) -> None:
        target = config_dir / "certs"
        target.mkdir(exist_ok=True)
        for name in ("ca.pem", "node.pem", "node.key"):
            shutil.copy(certs / name, target / name)
        tool = node.install_dir / "bin" / "elasticsearch-users"
        subprocess.run(
            [str(tool), "useradd", USER, "-p", PASSWORD, "-r", "superuser"], env=env, check=True, capture_output=True
        )

    settings = {
        "xpack.security.enabled": "true",
        "xpack.security.http.ssl.enabled": "true",
        "xpack.security.http.ssl.key": "certs/node.key",
        "xpack.security.http.ssl.certificate": "certs/node.pem",
        "xpack.security.http.ssl.certificate_authorities": "certs/ca.pem",
    }
    node = LocalNode(
        "elasticsearch",
        heap="512m",
        name="secured",
        settings=settings,
        configure=configure,
        scheme="https",
        auth=(USER, PASSWORD),
        ca_cert=str(ca),
    )
    url = node.start()
    yield url, str(ca)
    node.stop()


def test_tls_basic_auth_and_api_key(secured, data_dir, tmp_path, capsys, caplog):
    url, ca = secured
    # Unauthenticated and unverified access are refused by the node itself.
    assert requests.get(url, verify=ca, timeout=10).status_code == 401
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, auth=(USER, PASSWORD), timeout=10)

    catalog, images, _ = write_slice(data_dir, tmp_path, 10, start=21)
    auth = ["--url", url, "--ca-cert", ca, "--user", USER, "--password", PASSWORD]
    assert (
        main(
            [
                "-vv",
                "index",
                *auth,
                "--catalog",
                str(catalog),
                "--images",
                str(images),
                "--json",
                "--dead-letter",
                str(tmp_path / "dead.jsonl"),
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert json.loads(out.out)["indexed"] == 10

    # API keys: this distribution cannot mint one (the .security index needs the
    # analysis-common module the integ-test zip lacks), so an unknown key must reach the
    # node's API-key realm and be refused with 401, without the key in the error.
    api_key = base64.b64encode(b"not-a-key-id:not-a-key-secret-5521").decode()
    assert main(["search", "--url", url, "--ca-cert", ca, "--api-key", api_key, "--query", "shirt"]) == 1
    searched = capsys.readouterr()
    assert "401" in searched.err and "security_exception" in searched.err

    # Wrong credentials: a clear error, without the secret in it.
    assert (
        main(
            [
                "search",
                "--url",
                url,
                "--ca-cert",
                ca,
                "--user",
                USER,
                "--password",
                "wrong-" + PASSWORD,
                "--query",
                "shirt",
            ]
        )
        == 1
    )
    failed = capsys.readouterr()
    assert "401" in failed.err
    everything = out.out + out.err + searched.out + searched.err + failed.out + failed.err + caplog.text
    for secret in (PASSWORD, api_key, "not-a-key-secret-5521"):
        assert secret not in everything
