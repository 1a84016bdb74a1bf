"""Least privilege on a secured node of each engine (what ``vistag engine start --secure`` starts).

TLS on HTTP and transport from a private CA, internal users (OpenSearch's security
plugin; Elasticsearch's file realm), and the roles ``vistag security roles``
prints. The indexer user does its job and nothing else; the storefront user
searches and runs templates on the alias and nothing else; wrong or missing
credentials give a clear 401 with no secret in any message or log.
"""

from __future__ import annotations

import json
import logging

import pytest

from vistag.cli.main import main
from vistag.config import ConnectionSettings
from vistag.engine.connect import connect
from vistag.engine.roles import INDEXER, STOREFRONT, role_definitions
from vistag.errors import EngineError
from vistag.local.node import LocalNode
from vistag.local.security import load_or_create_setup, secure_options

pytestmark = pytest.mark.slow


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("opensearch", marks=pytest.mark.opensearch),
        pytest.param("elasticsearch", marks=pytest.mark.elasticsearch),
    ],
)
def secured(request, tmp_path_factory):
    engine = request.param
    setup = load_or_create_setup(tmp_path_factory.mktemp(f"security-{engine}"))
    extras = ("security",) if engine == "opensearch" else ()
    node = LocalNode(engine, heap="512m", name="pytest-secure", extras=extras, **secure_options(engine, setup))
    url = node.start()
    yield engine, url, setup
    node.stop()


def _client(url, setup, user, password=None):
    settings = ConnectionSettings(
        urls=(url,),
        username=user,
        ca_cert=str(setup.ca_cert),
        password=password if password is not None else setup.credentials[user],
    )
    return connect(settings)


def _cli_auth(url, setup, user, password=None) -> list[str]:
    return [
        "--url",
        url,
        "--ca-cert",
        str(setup.ca_cert),
        "--user",
        user,
        "--password",
        password if password is not None else setup.credentials[user],
    ]


def _status(call) -> int:
    with pytest.raises(EngineError) as info:
        call()
    return info.value.status


@pytest.fixture(scope="module")
def indexed(secured, small_catalog, tmp_path_factory):
    """The indexer user indexes the catalog through the CLI; the admin adds two indices no role names."""
    engine, url, setup = secured
    catalog, images, rows = small_catalog
    dead = tmp_path_factory.mktemp("dl") / "dead.jsonl"
    assert (
        main(
            [
                "-q",
                "index",
                *_cli_auth(url, setup, "vistag-indexer"),
                "--catalog",
                str(catalog),
                "--images",
                str(images),
                "--dead-letter",
                str(dead),
            ]
        )
        == 0
    )
    admin = _client(url, setup, "vistag-admin")
    # "other": neither role's; "products-archive": the indexer's prefix, but not the storefront's alias.
    for other in ("other", "products-archive"):
        admin.perform("PUT", f"/{other}/_doc/1", {"title": "not for the storefront"}, params={"refresh": "true"})
    admin.close()
    return engine, url, setup, rows


def test_the_installed_roles_are_the_printed_ones(secured, capsys):
    engine, url, setup = secured
    assert main(["security", "roles", "--engine", engine, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == role_definitions(engine, "products")
    if engine == "opensearch":
        admin = _client(url, setup, "vistag-admin")
        for name in (INDEXER, STOREFRONT):
            installed = admin.perform("GET", f"/_plugins/_security/api/roles/{name}")[name]
            assert installed["cluster_permissions"] == printed[name]["cluster_permissions"]
            assert (
                installed["index_permissions"][0]["allowed_actions"]
                == printed[name]["index_permissions"][0]["allowed_actions"]
            )
        admin.close()
    else:  # file-realm roles are not served by the role API; the role names resolve instead
        admin = _client(url, setup, "vistag-admin")
        me = _client(url, setup, "vistag-storefront").perform("GET", "/_security/_authenticate")
        assert me["roles"] == [STOREFRONT]
        admin.close()


def test_storefront_searches_and_cannot_write_delete_or_read_elsewhere(indexed):
    engine, url, setup, rows = indexed
    shop = _client(url, setup, "vistag-storefront")
    assert shop.count("products") == len(rows)
    assert shop.search("products", {"query": {"match": {"title": "shirt"}}, "size": 3})["hits"]["hits"]
    assert len(shop.sources("products", [rows[0]["id"], rows[1]["id"]])) == 2  # _mget
    assert len(shop.msearch([("products", {"size": 1, "query": {"match_all": {}}})] * 2)) == 2
    assert _status(lambda: shop.perform("PUT", "/products/_doc/x", {"title": "spam"})) == 403
    assert _status(lambda: shop.perform("DELETE", f"/products/_doc/{rows[0]['id']}")) == 403
    assert _status(lambda: shop.delete_index("products", missing_ok=False)) == 403
    assert _status(lambda: shop.search("other", {"query": {"match_all": {}}})) == 403
    assert _status(lambda: shop.search("products-archive", {"query": {"match_all": {}}})) == 403
    assert _status(lambda: shop.perform("PUT", "/products/_settings", {"index": {"number_of_replicas": 0}})) == 403
    with pytest.raises(EngineError) as info:
        shop.perform("PUT", "/_index_template/evil", {"index_patterns": ["evil*"]})
    assert info.value.status == 403 and setup.credentials["vistag-storefront"] not in str(info.value)
    shop.close()


def test_storefront_runs_the_stored_search_templates(indexed):
    engine, url, setup, rows = indexed
    shop = _client(url, setup, "vistag-storefront")
    if not shop.info().has("lang-mustache"):
        pytest.skip("the Elasticsearch integ-test zip has no lang-mustache module: no stored search templates")
    from vistag.documents.strategies import keyword
    from vistag.search import Searcher

    searcher = Searcher(shop, "products")
    params = keyword.params("shirt", 5, 0, None, None)
    assert [h.id for h in searcher.run_stored_template(keyword, params)] == [
        h.id for h in searcher.keyword("shirt", size=5)
    ]
    assert (
        _status(lambda: shop.perform("POST", "/_render/template", {"id": "products-keyword", "params": params})) == 403
    )
    shop.close()


def test_storefront_cannot_bulk_index(indexed, small_catalog, tmp_path, capsys):
    engine, url, setup, rows = indexed
    catalog, images, _ = small_catalog
    code = main(
        [
            "-q",
            "index",
            *_cli_auth(url, setup, "vistag-storefront"),
            "--catalog",
            str(catalog),
            "--images",
            str(images),
            "--index",
            "products",
            "--dead-letter",
            str(tmp_path / "dl.jsonl"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "403" in captured.err and "privilege" in captured.err
    assert setup.credentials["vistag-storefront"] not in captured.out + captured.err


def test_indexer_cannot_touch_other_indices(indexed):
    engine, url, setup, rows = indexed
    indexer = _client(url, setup, "vistag-indexer")
    assert indexer.count("products") == len(rows)  # its own (resume reads it back)
    assert _status(lambda: indexer.search("other", {"query": {"match_all": {}}})) == 403
    assert _status(lambda: indexer.delete_index("other", missing_ok=False)) == 403
    assert _status(lambda: indexer.create_index("catalog-of-someone-else")) == 403
    assert (
        _status(
            lambda: indexer.perform("PUT", "/_cluster/settings", {"persistent": {"action.auto_create_index": "true"}})
        )
        == 403
    )
    indexer.create_index("products-scratch")  # its prefix: allowed
    indexer.delete_index("products-scratch")
    indexer.close()


def test_wrong_or_missing_credentials_are_a_clear_401_without_secrets(indexed, capsys, caplog):
    engine, url, setup, rows = indexed
    wrong = "Wr0ng-but-secret-7731"
    with caplog.at_level(logging.DEBUG):
        code = main(
            ["search", *_cli_auth(url, setup, "vistag-storefront", wrong), "--engine", engine, "--query", "shirt"]
        )
    captured = capsys.readouterr()
    assert code == 1
    assert "401" in captured.err and "credentials" in captured.err, captured.err
    for secret in (wrong, *setup.credentials.values()):
        assert secret not in captured.out + captured.err + caplog.text
    assert main(["search", "--url", url, "--ca-cert", str(setup.ca_cert), "--engine", engine, "--query", "shirt"]) == 1
    assert "401" in capsys.readouterr().err
