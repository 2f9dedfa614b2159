#!/usr/bin/env python3
"""Writes osquery's Linux tables and their columns, from an osquery checkout's specs, in the
format agent/src/sql/tables/osquery_columns.txt holds:

    python3 xtask/scripts/osquery_columns.py <osquery checkout> [commit] > agent/src/sql/tables/osquery_columns.txt

The spec files are osquery's table definitions (a small Python DSL); they are evaluated with
stand-ins that record the table name and each column's name, type and hidden flag.
Which specs are built on Linux comes from specs/CMakeLists.txt (platform-independent specs,
cpuid on x86_64, the platform-dependent ones whose list names linux, and the optional ones
osquery builds by default: DPKG, AWS).
"""
import re
import sys
from pathlib import Path

root = Path(sys.argv[1])
commit = sys.argv[2] if len(sys.argv) > 2 else "?"
cmake = (root / "specs/CMakeLists.txt").read_text()

indep = []
for block in re.findall(r"(?:set|list\(APPEND)\s*\(?\s*platform_independent_spec_files(.*?)\)", cmake, re.S):
    indep += [w.strip('"') for w in block.split()]
indep.append("cpuid.table")
# Every "file:platforms" entry (the main list and the optional ones osquery builds by default
# on Linux: DPKG, AWS, ...).
linux = [m.group(1) for m in re.finditer(r'"([^":]+\.table):([^"]+)"', cmake) if "linux" in m.group(2).split(",")]

LINUX, DARWIN, WINDOWS, FREEBSD = 1, 2, 4, 8
POSIX = LINUX | DARWIN | FREEBSD


class Spec:
    def __init__(self):
        self.name = None
        self.columns = []


def evaluate(text):
    spec = Spec()

    def column(name, ty, desc="", **kw):
        return (name, ty, bool(kw.get("hidden", False)))

    def schema(cols):
        spec.columns.extend(c for c in cols if isinstance(c, tuple))

    def extended_schema(platform, cols):
        if platform & LINUX:
            schema(cols)

    env = {
        "table_name": lambda n, **kw: setattr(spec, "name", n),
        "schema": schema,
        "extended_schema": extended_schema,
        "Column": column,
        "ForeignKey": lambda **kw: None,
        "LINUX": LINUX, "DARWIN": DARWIN, "WINDOWS": WINDOWS, "POSIX": POSIX,
        "FREEBSD": FREEBSD, "MACWIN": DARWIN | WINDOWS, "LINWIN": LINUX | WINDOWS,
    }
    for t in ["TEXT", "INTEGER", "BIGINT", "UNSIGNED_BIGINT", "DOUBLE", "BLOB", "DATETIME"]:
        env[t] = t
    for f in ["description", "attributes", "implementation", "examples", "fuzz_paths"]:
        env[f] = lambda *a, **kw: None
    exec(compile(text, "spec", "exec"), env)
    return spec


out = [
    "# osquery's Linux tables and their columns (name, type, HIDDEN), from osquery's specs at",
    f"# commit {commit}, written by xtask/scripts/osquery_columns.py. The test",
    "# osquery_columns_match checks every table Osprey has against this list.",
    "",
]
files = sorted(set(f"specs/{f}" for f in indep + linux))
specs = []
for f in files:
    specs.append(evaluate((root / f).read_text()))
for s in sorted(specs, key=lambda s: s.name):
    out.append(s.name)
    for name, ty, hidden in s.columns:
        out.append(f"  {name} {ty}" + (" HIDDEN" if hidden else ""))
    out.append("")
print("\n".join(out).rstrip("\n"))
