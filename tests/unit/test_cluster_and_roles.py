"""Pure logic of local clusters (member settings), role definitions and the YAML they are written in."""

from __future__ import annotations

import argparse
import json

import pytest
import yaml

from vistag.cli.options import connection_settings
from vistag.engine.roles import INDEXER, STOREFRONT, USERS, console_text, role_definitions
from vistag.errors import LocalEngineError
from vistag.local.cluster import LocalCluster
from vistag.local.security import _yaml, generate_password, load_or_create_setup


@pytest.mark.parametrize(
    "engine,key",
    [("opensearch", "cluster.initial_cluster_manager_nodes"), ("elasticsearch", "cluster.initial_master_nodes")],
)
def test_members_form_one_cluster_through_seed_hosts(tmp_path, engine, key):
    cluster = LocalCluster(engine, nodes=3, home=tmp_path, name="unit")
    state = {"nodes": 3, "transport_ports": [9301, 9302, 9303], "http_ports": [9201, 9202, 9203]}
    members = [cluster._member(i, state) for i in range(3)]
    names = [m.extra_settings["node.name"] for m in members]
    assert len(set(names)) == 3 and len({m.run_dir for m in members}) == 3
    for member in members:
        settings = member.extra_settings
        assert settings["cluster.name"] == cluster.cluster_name
        assert settings["discovery.seed_hosts"] == "127.0.0.1:9301,127.0.0.1:9302,127.0.0.1:9303"
        assert settings[key] == ",".join(names)
        assert settings["discovery.type"] is None  # removes single-node discovery
    with pytest.raises(LocalEngineError, match="at least 2 nodes"):
        LocalCluster(engine, nodes=1, home=tmp_path)


def test_comma_separated_urls_are_several_hosts():
    args = argparse.Namespace(url=["http://a:9200,http://b:9200", "http://c:9200"])
    assert connection_settings(args).urls == ("http://a:9200", "http://b:9200", "http://c:9200")


WRITE_ACTIONS = ("write", "crud", "index", "delete", "create_index", "manage", "indices:data/write")


@pytest.mark.parametrize("engine", ["opensearch", "elasticsearch"])
def test_the_storefront_role_reads_only_the_alias(engine):
    roles = role_definitions(engine, index="shop", alias="shop-live")
    store, indexer = roles[STOREFRONT], roles[INDEXER]
    if engine == "opensearch":
        (grant,) = store["index_permissions"]
        patterns, actions = grant["index_patterns"], grant["allowed_actions"]
        cluster = store["cluster_permissions"]
        assert indexer["index_permissions"][0]["index_patterns"] == ["shop*"]
    else:
        (grant,) = store["indices"]
        patterns, actions = grant["names"], grant["privileges"]
        cluster = store["cluster"]
        assert indexer["indices"][0]["names"] == ["shop*"]
    assert patterns == ["shop-live"]
    assert not [a for a in actions + cluster if any(a.startswith(w) for w in WRITE_ACTIONS)]
    assert not [a for a in cluster if "admin" in a or a in ("all", "manage", "monitor")]


def test_roles_yaml_reads_back_and_console_text_is_pasteable():
    for engine in ("opensearch", "elasticsearch"):
        roles = role_definitions(engine)
        document = {"_meta": {"type": "roles", "config_version": 2}, **roles, "empty": {"users": []}}
        assert yaml.safe_load(_yaml(document)) == document
        text = console_text(engine)
        first = text.split("\n\n")[0]
        method_path, body = first.split("\n", 1)
        assert method_path.startswith("PUT ") and method_path.endswith(INDEXER)
        assert json.loads(body)  # a JSON body under each request line


def test_generated_passwords_can_follow_password_on_the_command_line(tmp_path):
    # secrets.token_urlsafe starts with "-" one time in 64; such a password made `vistag index
    # --user U --password P` fail in argparse ("expected one argument"). 2,000 draws would hit it.
    from vistag.cli.parser import build_parser

    passwords = [generate_password() for _ in range(2000)]
    assert all(p.isalnum() and len(p) == 24 for p in passwords)
    assert len(set(passwords)) == len(passwords)
    setup = load_or_create_setup(tmp_path)
    assert set(setup.credentials) == set(USERS) and all(p.isalnum() for p in setup.credentials.values())
    args = build_parser().parse_args(["search", "--user", "u", "--password", passwords[0], "--query", "x"])
    assert args.password == passwords[0]


def test_a_node_that_dies_on_faiss_is_explained_with_the_index_and_the_way_out(tmp_path):
    from vistag.local.node import explain_start_failure

    data = tmp_path / "data"
    (data / "nodes" / "0" / "indices" / "G9D4HoGhR5SLx2AH3AADSA").mkdir(parents=True)
    log = (
        "[INFO ][o.o.p.PluginsService] PluginService:onIndexModule index:[my-vectors/G9D4HoGhR5SLx2AH3AADSA]\n"
        "[INFO ][o.o.p.PluginsService] PluginService:onIndexModule index:[gone/AAAAAAAAAAAAAAAAAAAAAA]\n"
        "fatal error in thread [opensearch[node][write][T#2]], exiting\n"
        "java.lang.UnsatisfiedLinkError: no opensearchknn_faiss_avx512 in java.library.path\n"
    )
    text = explain_start_failure(log, data)
    assert "faiss" in text and "my-vectors (G9D4HoGhR5SLx2AH3AADSA)" in text and "gone" not in text
    assert "--drop-index NAME" in text
    assert explain_start_failure("java.lang.OutOfMemoryError: Java heap space", data) == ""
