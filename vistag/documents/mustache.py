"""A small mustache renderer, compatible with the subset the engines' search templates use.

Supported: ``{{name}}`` and ``{{a.b}}`` (JSON-string escaped, as the engines do for
``application/json`` templates), ``{{.}}``, sections ``{{#name}}...{{/name}}`` over
lists, dicts and truthy values, inverted sections ``{{^name}}...{{/name}}`` and the
engines' ``{{#toJson}}name{{/toJson}}`` function. That is enough for vistag's
templates, which are rendered here for the CLI and by the engine for storefronts.
"""

from __future__ import annotations

import json
import re
from typing import Any

_TAG = re.compile(r"\{\{([#^/]?)\s*([^}]+?)\s*\}\}")


def render(template: str, params: dict[str, Any]) -> str:
    """Render ``template`` with ``params``.

    Raises:
        ValueError: unbalanced sections.
    """
    tree, rest = _parse(template, 0, None)
    if rest != len(template):
        raise ValueError("unbalanced mustache sections")
    return _render(tree, [params])


def _parse(text: str, pos: int, closing: str | None) -> tuple[list, int]:
    nodes: list = []
    while True:
        match = _TAG.search(text, pos)
        if not match:
            if closing:
                raise ValueError(f"section {closing!r} is not closed")
            nodes.append(text[pos:])
            return nodes, len(text)
        nodes.append(text[pos : match.start()])
        kind, name = match.groups()
        pos = match.end()
        if kind == "/":
            if name != closing:
                raise ValueError(f"unexpected closing tag {name!r}")
            return nodes, pos
        if kind in ("#", "^"):
            children, pos = _parse(text, pos, name)
            nodes.append((kind, name, children))
        else:
            nodes.append(("var", name))


def _lookup(name: str, stack: list[Any]) -> Any:
    if name == ".":
        return stack[-1]
    head, *rest = name.split(".")
    for ctx in reversed(stack):
        if isinstance(ctx, dict) and head in ctx:
            value = ctx[head]
            for part in rest:
                value = value.get(part) if isinstance(value, dict) else None
            return value
    return None


def _render(nodes: list, stack: list[Any]) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif node[0] == "var":
            value = _lookup(node[1], stack)
            if value is None:
                continue
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, (int, float)):
                text = repr(value) if isinstance(value, float) else str(value)
            else:
                text = str(value)
            out.append(json.dumps(text)[1:-1])
        else:
            kind, name, children = node
            if name == "toJson" and kind == "#":
                key = "".join(c for c in children if isinstance(c, str)).strip()
                out.append(json.dumps(_lookup(key, stack), separators=(",", ":")))
                continue
            value = _lookup(name, stack)
            falsy = value is None or value is False or value == [] or value == ""
            if kind == "^":
                if falsy:
                    out.append(_render(children, stack))
            elif not falsy:
                items = value if isinstance(value, list) else [value]
                for item in items:
                    out.append(_render(children, [*stack, item]))
    return "".join(out)
