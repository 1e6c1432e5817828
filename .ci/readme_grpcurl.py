#!/usr/bin/env python3
"""Lists the grpcurl commands of README.md, exactly as written, grouped by the daemon they target.

Prints one JSON object per command: {"addr": "127.0.0.1:50051", "line": N, "command": "grpcurl ..."}.
A command spans several lines when a line ends with a backslash or a quoted -d argument is still open.
Only ```sh blocks are read; `.ci/readme_grpcurl.sh` runs what this prints.
"""
import json
import re
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "README.md"
in_sh = False
pending = None
start = 0
for number, line in enumerate(open(path, encoding="utf-8"), start=1):
    line = line.rstrip("\n")
    if line.startswith("```"):
        in_sh = line.strip() == "```sh" and not in_sh
        pending = None
        continue
    if not in_sh:
        continue
    if pending is None:
        if not line.startswith("grpcurl "):
            continue
        pending, start = line, number
    else:
        pending += "\n" + line
    # Complete when no single-quoted string is open and the line does not continue.
    if pending.count("'") % 2 == 0 and not pending.endswith("\\"):
        addr = re.search(r"127\.0\.0\.1:\d+", pending)
        print(json.dumps({"addr": addr.group(0) if addr else "", "line": start, "command": pending}))
        pending = None
