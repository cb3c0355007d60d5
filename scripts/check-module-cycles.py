#!/usr/bin/env python3
"""Fails when the host crate's top-level modules import each other in a circle.

Reads every `crate::<module>` path in host/src (tests left out: a test may reach
across) and looks for a cycle in the graph of top-level modules. Run by .ci/run;
`--graph` prints the graph.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "host", "src")


def module_of(rel):
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def graph():
    edges = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            path = os.path.join(folder, name)
            parts = module_of(os.path.relpath(path, ROOT))
            if not name.endswith(".rs") or not parts or parts[0] == "bin":
                continue
            if "tests" in parts or parts[-1].endswith("_tests"):
                continue
            source = open(path, encoding="utf-8").read()
            source = re.split(r"#\[cfg\(test\)\]\s*mod tests \{", source)[0]
            used = set(re.findall(r"crate::([a-z_]+)", source)) - {parts[0]}
            edges.setdefault(parts[0], set()).update(used)
    return edges


def cycle(edges):
    state = {}

    def visit(node, path):
        state[node] = "open"
        for next_node in sorted(edges.get(node, ())):
            if state.get(next_node) == "open":
                return path[path.index(next_node):] + [node, next_node]
            if next_node not in state:
                found = visit(next_node, path + [node])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node, [])
            if found:
                return found
    return None


edges = graph()
if "--graph" in sys.argv:
    for node in sorted(edges):
        print(f"{node} -> {', '.join(sorted(edges[node])) or '-'}")
found = cycle(edges)
if found:
    print("import circle in host/src: " + " -> ".join(dict.fromkeys(found)) + f" -> {found[-1]}")
    sys.exit(1)
print(f"host/src: {len(edges)} modules, no import circle")
