#!/usr/bin/env python3
"""The plugin's layering (janus-plugin/plugin.c, the comment at its top).

Reads the #include "..." lines of janus-plugin/*.c and *.h and fails when a
file includes a header of its own layer or a higher one (a file's own header
excepted), when the include graph among the plugin's files has a cycle, or
when a file is missing from the table below (a new part must be given its
place). Headers outside janus-plugin/ (../protocol/, Janus's) are below
everything and not checked here. Pure text: runs in well under a second.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "janus-plugin")

# Higher numbers sit higher; a file may include only strictly lower ones.
RANK = {
    "plugin": 9,
    "requests": 8,
    "control": 7, "op_control": 7, "forwards": 7,
    "devices": 6,
    "joins": 5,
    "ingest": 4,
    "session": 3, "media_srtp": 3, "record": 3,
    "device": 2,
    "config": 1, "gateway": 1, "nack": 1, "ccfb_rx": 1, "gopcache": 1, "params": 1, "usage": 1,
    "playout": 1, "timing": 1, "forward": 1,
}
# A .c and the header that declares what it offers, when the names differ.
OWN_HEADER = {"control.c": "op_control.h"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def stem(name):
    return os.path.splitext(name)[0]


def main():
    files = sorted(f for f in os.listdir(ROOT) if f.endswith((".c", ".h")))
    errors, graph = [], {}
    for f in files:
        if stem(f) not in RANK:
            errors.append(f"{f}: not in test_layers.py's RANK table: give it a layer")
            continue
        with open(os.path.join(ROOT, f), encoding="utf-8") as fh:
            text = fh.read()
        graph[f] = []
        for inc in INCLUDE.findall(text):
            if "/" in inc or not os.path.exists(os.path.join(ROOT, inc)):
                continue  # ../protocol/ and the like: the bottom
            graph[f].append(inc)
            own = inc == OWN_HEADER.get(f, stem(f) + ".h")
            if stem(inc) not in RANK:
                continue  # reported above
            if not own and RANK[stem(inc)] >= RANK[stem(f)]:
                errors.append(f"{f} (layer {RANK[stem(f)]}) includes {inc} "
                              f"(layer {RANK[stem(inc)]}): not below it")
    # Cycles, by depth-first search over the includes among the plugin's files.
    state = {}

    def visit(node, path):
        state[node] = 1
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                errors.append("include cycle: " + " -> ".join(path[path.index(nxt):] + [nxt])
                              if nxt in path else f"include cycle through {nxt}")
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for f in graph:
        if f not in state:
            visit(f, [f])
    for e in errors:
        print("FAIL:", e)
    if not errors:
        print(f"ok: {len(graph)} files, includes point down the layers, no cycle")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
