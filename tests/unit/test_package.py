import subprocess
import sys

import pytest

from vistag.cli.parser import build_parser
from vistag.local.versions import DISTRIBUTIONS


def test_import_does_not_import_torch():
    code = (
        "import sys, vistag, vistag.engine, vistag.documents, vistag.indexer, vistag.analyzers, vistag.models, "
        "vistag.search, vistag.cli.parser; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "argv", [[], ["engine"], ["engine", "start"], ["mappings", "show"], ["index"], ["search"], ["demo"]]
)
def test_every_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*argv, "--help"])
    assert exc.value.code == 0
    assert "usage: vistag" in capsys.readouterr().out


def test_env_defaults(monkeypatch):
    monkeypatch.setenv("VISTAG_ENGINE", "elasticsearch")
    assert build_parser().parse_args(["search", "--query", "x"]).engine == "elasticsearch"


def test_pinned_plugins_match_their_distribution_and_majors_are_supported():
    from vistag.engine.client import SUPPORTED_MAJORS

    for name, dist in DISTRIBUTIONS.items():
        assert int(dist.version.split(".")[0]) in SUPPORTED_MAJORS[name]
    # OpenSearch refuses a plugin built for another version: the k-NN zip must be <dist version>.0.
    knn = DISTRIBUTIONS["opensearch"].plugins[0]
    assert knn.version == DISTRIBUTIONS["opensearch"].version + ".0"


def test_import_vistag_is_lazy_and_exports_the_front_door():
    code = (
        "import sys, vistag; names = set(vistag.__all__); "
        "print(any(m in sys.modules for m in ('torch', 'elasticsearch', 'opensearchpy', 'vistag.indexer.api')), "
        "{'index_catalog', 'Searcher', 'Tagger', 'install_templates'} <= names, callable(vistag.index_catalog))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True"]


def test_cli_reports_errors_without_traceback(tmp_path, capsys, monkeypatch):
    from vistag.cli.main import main

    monkeypatch.delenv("VISTAG_URL", raising=False)
    monkeypatch.setenv("VISTAG_HOME", str(tmp_path))
    monkeypatch.setenv("VISTAG_ENGINE_HOME", str(tmp_path / "engines"))
    assert main(["search", "--query", "x"]) == 1
    assert "vistag engine start" in capsys.readouterr().err
