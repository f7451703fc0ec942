#!/usr/bin/env python3
"""Summarise a `perf record -g` profile of ringside (see BENCHMARKS.md).

    perf script -i perf.data -F pid,ip,sym | python3 examples/loadtest/perf_summary.py [-n 40] [-pid PID]

Prints, per process, the share of CPU samples in each function's subtree
(inclusive: a sample counts once for every distinct function on its stack),
and the flat (self) top functions.
"""
import argparse
import collections
import re
import sys

ap = argparse.ArgumentParser()
ap.add_argument("-n", type=int, default=40)
ap.add_argument("-pid", default=None)
ap.add_argument("-match", default=None, help="only functions matching this regexp in the inclusive list")
a = ap.parse_args()

samples = collections.defaultdict(list)  # pid -> [stack (leaf first)]
pid, stack = None, []
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line.strip():
        if pid is not None:
            samples[pid].append(stack)
        pid, stack = None, []
        continue
    if not line.startswith("\t") and not line.startswith(" " * 8):
        if pid is not None:
            samples[pid].append(stack)
        pid, stack = line.split()[0], []
        continue
    parts = line.strip().split(None, 1)
    sym = parts[1] if len(parts) > 1 else "?"
    sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
    stack.append(sym)
if pid is not None:
    samples[pid].append(stack)

total = sum(len(v) for v in samples.values())
rx = re.compile(a.match) if a.match else None
for p, st in sorted(samples.items(), key=lambda kv: -len(kv[1])):
    if a.pid and p != a.pid:
        continue
    n = len(st)
    print(f"== pid {p}: {n} samples, {100*n/total:.1f}% of all")
    incl = collections.Counter()
    flat = collections.Counter()
    for s in st:
        if s:
            flat[s[0]] += 1
        for f in set(s):
            incl[f] += 1
    print("  inclusive (share of this process):")
    shown = 0
    for f, c in incl.most_common():
        if rx and not rx.search(f):
            continue
        print(f"    {100*c/n:5.1f}%  {f}")
        shown += 1
        if shown >= a.n:
            break
    print("  self:")
    for f, c in flat.most_common(15):
        print(f"    {100*c/n:5.1f}%  {f}")
