"""The packages are layered in the order data flows; an import may only go down.

Each top-level package (or module) of ``vistag`` sits in one layer below. A module
may import its own package and anything in a lower layer: never a package of its
own layer (sideways) or of a higher one (up), and never the root package
``vistag`` (whose ``__init__`` is the lazy front door on top of everything).
Imports inside functions and under ``TYPE_CHECKING`` count too: they are still a
dependency a reader has to follow. Local development nodes (``vistag.local``) are
imported only by the CLI and the demo, never by production code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "vistag"

#: Bottom first. A package may import only from layers before its own.
LAYERS: list[set[str]] = [
    {"vistag.version", "vistag.errors", "vistag.config"},  # foundation: no vistag imports but these
    {"vistag.catalog", "vistag.images", "vistag.engine"},  # rows and images in; the client adapter
    {"vistag.local"},  # dev-only nodes (see DEV_ONLY)
    {"vistag.models"},  # torch: backbones, embedding, heads, training
    {"vistag.analyzers"},  # kNN tagger, tag relations, document taggers
    {"vistag.evaluation", "vistag.documents"},  # measuring models; documents and templates
    {"vistag.search", "vistag.pipelines"},  # queries; engine-side ml-commons pipelines
    {"vistag.indexer", "vistag.relevance"},  # bulk, index pass, sync, reindex; measuring relevance
    {"vistag.service", "vistag.demo", "vistag.ray"},  # the HTTP service and page; the demo run; the Ray runner
    {"vistag.cli"},  # commands: parse, call one function, print
    {"vistag", "vistag.__main__"},  # the lazy front door
]
#: Packages only some others may import.
DEV_ONLY = {"vistag.local": {"vistag.cli", "vistag.demo"}}


def unit_of(module: str) -> str:
    """``vistag.indexer.bulk`` -> ``vistag.indexer``; ``vistag`` -> ``vistag``."""
    parts = module.split(".")
    return ".".join(parts[:2])


def layer_of(unit: str) -> int:
    for i, layer in enumerate(LAYERS):
        if unit in layer:
            return i
    raise AssertionError(f"{unit} is in no layer: add it to LAYERS")


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """Every vistag module ``path`` imports, with the line (relative imports resolved)."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "vistag"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "vistag":
                if target == "vistag":  # `from vistag import x` may name a submodule
                    out += [
                        (
                            node.lineno,
                            f"vistag.{a.name}"
                            if (root / a.name).exists() or (root / f"{a.name}.py").exists()
                            else "vistag",
                        )
                        for a in node.names
                    ]
                else:
                    out.append((node.lineno, target))
    return out


def violations(root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        source = unit_of(module_name(path, root))
        for line, target in imported_modules(path, root):
            dest = unit_of(target)
            where = f"{path.relative_to(root.parent)}:{line} imports {target}"
            if dest == source and source != "vistag":
                continue
            if dest == "vistag":
                found.append(f"{where}: the root package is the front door; import the module itself")
            elif dest in DEV_ONLY and source not in DEV_ONLY[dest]:
                found.append(f"{where}: {dest} is development tooling, only {sorted(DEV_ONLY[dest])} may use it")
            elif layer_of(dest) >= layer_of(source):
                kind = "sideways" if layer_of(dest) == layer_of(source) else "up"
                found.append(f"{where}: {kind} ({source} is in layer {layer_of(source)}, {dest} in {layer_of(dest)})")
    return found


def test_imports_only_go_down_the_layers():
    assert violations() == []


def test_every_package_states_its_idea_in_one_sentence():
    for init in sorted(ROOT.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(ROOT.parent)} has no docstring"
        first = doc.split("\n\n")[0]
        assert first.endswith(".") and len(first) < 300, (
            f"{init}: the first paragraph should be one sentence: {first!r}"
        )


@pytest.mark.parametrize(
    "source,snippet,expected",
    [
        ("models/x.py", "from vistag.indexer.bulk import bulk\n", "up"),
        ("search/x.py", "from vistag.pipelines import install_inference\n", "sideways"),
        ("indexer/x.py", "from vistag import __version__\n", "front door"),
        ("indexer/x.py", "def f():\n    from vistag.local.node import LocalNode\n", "development tooling"),
        ("search/x.py", "from ..indexer import bulk\n", "up"),
        ("indexer/x.py", "from vistag.search.queries import Searcher\n", None),
    ],
)
def test_the_layer_check_catches_a_bad_import(tmp_path, source, snippet, expected):
    fake = tmp_path / "vistag"
    (fake / source).parent.mkdir(parents=True)
    (fake / source).write_text(snippet)
    found = violations(fake)
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and expected in found[0], found
