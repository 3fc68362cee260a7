#!/usr/bin/env python3
"""Goal: keep the tree's structural rules true as it grows.

Method: read every C source and header and check, line by line:
- includes point one way: core <- io <- state <- operators <- cli (bench, tests, examples may
  include anything); a module includes only its own folder, the folders below it, and
  include/weir;
- raw allocation (malloc, calloc, realloc, free, aligned_alloc, posix_memalign) only in
  core/mem.c, so every allocation goes through a worker's arena;
- lines of at most 100 columns (tabs count 8).
Exit 1 with one line per violation, naming file and line.
"""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
LAYERS = ["core", "io", "state", "operators", "cli"]
MAY_INCLUDE = {layer: set(LAYERS[: i + 1]) | {"weir"} for i, layer in enumerate(LAYERS)}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/')
RAW_ALLOC = re.compile(r"(?<![\w.>])(malloc|calloc|realloc|free|aligned_alloc|posix_memalign)\s*\(")
CHECKED = LAYERS + ["include", "bench", "tests", "examples"]

problems = []
for top in CHECKED:
    for directory, _, files in os.walk(os.path.join(ROOT, top)):
        for name in sorted(files):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, ROOT)
            with open(path, encoding="utf-8") as source:
                lines = source.read().split("\n")
            in_comment = False
            for number, line in enumerate(lines, 1):
                if len(line.expandtabs(8)) > 100:
                    problems.append(f"{relative}:{number}: longer than 100 columns")
                match = INCLUDE.match(line)
                if match and top in MAY_INCLUDE and match.group(1) not in MAY_INCLUDE[top]:
                    problems.append(f"{relative}:{number}: {top}/ must not include "
                                    f"{match.group(1)}/ (dependencies point one way)")
                code = line
                if in_comment:
                    if "*/" not in code:
                        continue
                    code = code.split("*/", 1)[1]
                    in_comment = False
                code = re.sub(r"/\*.*?\*/", "", code)
                if "/*" in code:
                    code = code.split("/*", 1)[0]
                    in_comment = True
                code = re.sub(r'"(\\.|[^"\\])*"', '""', code)
                if top in LAYERS and relative != os.path.join("core", "mem.c") \
                        and RAW_ALLOC.search(code):
                    problems.append(f"{relative}:{number}: raw allocation outside core/mem.c")

for problem in problems:
    print(problem)
print(f"tidy: {len(problems)} problems")
sys.exit(1 if problems else 0)
