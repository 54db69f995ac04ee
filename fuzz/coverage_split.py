#!/usr/bin/env python3
"""Where did a fuzz target's coverage grow? Compares the edges covered by the corpus inputs older
than a time with those covered by the whole corpus, by source crate.

    fuzz/coverage_split.py <target> <since> [<until>]

(times as unix seconds or YYYY-MM-DDTHH:MM:SS, UTC; with <until>, inputs written after it are
left out of "after", so one run of several can be looked at.) <since> may instead be a
directory: a snapshot of the corpus taken earlier (`cp -al fuzz/corpus/<target> /tmp/snap`, hard
links, so that inputs libFuzzer deletes later stay in it); "before" is then the snapshot's
coverage.

Give the start time of a run: the inputs loaded at its start are never deleted, but inputs
created during the run and later reduced are replaced (the larger file deleted), so a time
inside a run understates "before" and overstates the gain.

Runs the built target (fuzz/target/x86_64-unknown-linux-gnu/release/<target>, from
`cargo fuzz build -O <target>`) twice with `-runs=0 -print_coverage=1` (needs llvm-symbolizer on
the PATH) and prints, per crate (this workspace's crates by name, dependencies by registry
crate, the standard library as `std`), the covered edges before and after, and the edges gained;
then the functions of this workspace that gained edges.
"""

import datetime
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
LINE = re.compile(r"^COVERED_FUNC: hits: \d+ edges: (\d+)/(\d+) (.*) (\S+):\d+$")


def crate_of(path):
    if "/rustc/" in path or "/library/" in path:
        return "std"
    m = re.search(r"/registry/src/[^/]+/([^/]+?)-\d+[^/]*/", path)
    if m:
        return m.group(1)
    m = re.search(r"/crates/([^/]+)/", path)
    if m:
        return "workspace:" + m.group(1)
    if "/fuzz_targets/" in path:
        return "workspace:fuzz"
    return "other"


def covered(binary, corpus):
    out = subprocess.run([str(binary), str(corpus), "-runs=0", "-print_coverage=1"],
                         capture_output=True, text=True)
    by_func = {}
    for line in (out.stdout + out.stderr).splitlines():
        m = LINE.match(line)
        if m:
            by_func[(m.group(3), m.group(4))] = int(m.group(1))
    if not by_func:
        sys.exit(f"no COVERED_FUNC lines from {binary} (llvm-symbolizer on the PATH?)")
    return by_func


def epoch(t):
    if t.replace(".", "").isdigit():
        return float(t)
    return datetime.datetime.fromisoformat(t).replace(tzinfo=datetime.timezone.utc).timestamp()


def covered_by(binary, files):
    with tempfile.TemporaryDirectory() as d:
        for f in files:
            try:
                os.link(f, Path(d) / f.name)
            except FileNotFoundError:
                pass  # reduced away by a running fuzzer since the listing
        return covered(binary, d)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    target, since = sys.argv[1], sys.argv[2]
    until = epoch(sys.argv[3]) if len(sys.argv) == 4 else float("inf")
    binary = FUZZ / "target/x86_64-unknown-linux-gnu/release" / target
    corpus = FUZZ / "corpus" / target
    files = [f for f in corpus.iterdir() if f.is_file() and f.stat().st_mtime < until]
    if Path(since).is_dir():
        old = [f for f in Path(since).iterdir() if f.is_file()]
    else:
        t = epoch(since)
        old = [f for f in files if f.stat().st_mtime < t]
    before = covered_by(binary, old)
    after = covered_by(binary, files)
    sums = defaultdict(lambda: [0, 0])
    for key, edges in after.items():
        c = crate_of(key[1])
        sums[c][1] += edges
        sums[c][0] += before.get(key, 0)
    gained = {c: a - b for c, (b, a) in sums.items()}
    print(f"{target}: {len(old)} inputs older than {since}, {len(files)} in all")
    print(f"{'crate':32} {'before':>8} {'after':>8} {'gained':>8}")
    for c in sorted(sums, key=lambda c: (-gained[c], c)):
        b, a = sums[c]
        print(f"{c:32} {b:8} {a:8} {a - b:8}")
    b = sum(v[0] for v in sums.values())
    a = sum(v[1] for v in sums.values())
    print(f"{'total':32} {b:8} {a:8} {a - b:8}")
    grown = [(k, before.get(k, 0), e) for k, e in after.items()
             if e > before.get(k, 0) and crate_of(k[1]).startswith("workspace")]
    if grown:
        print("functions of this workspace that gained edges (before -> after):")
        for (name, path), b, a in sorted(grown):
            print(f"  {b} -> {a}  {name} ({path})")


if __name__ == "__main__":
    main()
