"""The README's code runs as printed: every Python block against a real node, every ``vistag`` line through the parser."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from vistag.cli.parser import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(README.read_text()) if lang == language]


def expected_output(code: str) -> list[str]:
    """What the block's ``print(...)  # value`` lines say they print."""
    return [
        line.split("#", 1)[1].strip()
        for line in code.splitlines()
        if line.lstrip().startswith("print(") and "#" in line
    ]


def test_the_readme_python_runs_as_printed_and_prints_what_it_says(node, tmp_path):
    if node.engine != "opensearch":
        pytest.skip("the README's example builds an opensearchpy.OpenSearch client")
    code = blocks("python")
    assert code, "the README has no Python block"
    for block in code:
        done = subprocess.run(
            [sys.executable, "-c", block],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            env={"VISTAG_URL": node.url, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.split("\n")[:-1] == expected_output(block), done.stdout
    node.client().delete_index("readme-products")


def shell_lines(code: str) -> list[str]:
    """The block's command lines, comments dropped and backslash-continued lines joined."""
    lines: list[str] = []
    pending = ""
    for raw in code.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append((pending + line).strip())
        pending = ""
    assert not pending, f"the block ends inside a continued line: {pending!r}"
    return lines


def test_shell_lines_join_continuations():
    joined = shell_lines("vistag a \\\n  --b  # c\nvistag d\n")
    assert [shlex.split(line) for line in joined] == [["vistag", "a", "--b"], ["vistag", "d"]]


def test_every_vistag_line_of_the_readme_parses():
    lines = [line for code in blocks("sh") for line in shell_lines(code)]
    commands = [line for line in lines if line.startswith("vistag ")]
    assert len(commands) >= 10
    parser = build_parser()
    for line in commands:
        args = parser.parse_args(shlex.split(line)[1:])
        assert callable(args.handler), line
