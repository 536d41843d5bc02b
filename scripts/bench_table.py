"""Prints the performance table of README's "Performance" section from the results of scripts/bench.sh.

    python3 scripts/bench_table.py RESULTS_DIR CRITERION_DIR
"""

import json
import os
import platform
import sys

out, crit = sys.argv[1], sys.argv[2]


def median_ns(*path):
    try:
        with open(os.path.join(crit, *path, "new", "estimates.json")) as f:
            return json.load(f)["median"]["point_estimate"]
    except OSError:
        return None


def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except OSError:
        return []


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def verdict(ok):
    return "met" if ok else "**missed**"


rows = []
s1, c1 = median_ns("send", "posthaste", "1"), median_ns("send", "crossbeam_try_send", "1")
s4, c4 = median_ns("send", "posthaste", "4"), median_ns("send", "crossbeam_try_send", "4")
if s1 and c1:
    rows.append(("`send` median, 1 producer", "≤ 150 ns", f"{s1:.0f} ns", verdict(s1 <= 150)))
    rows.append(("`send` ÷ raw `try_send`, 1 producer", "≤ 2×", f"{s1 / c1:.1f}× ({c1:.0f} ns raw)", verdict(s1 <= 2 * c1)))
if s4 and c4:
    rows.append(("`send` median, 4 producers (wall ÷ calls)", "≤ 150 ns", f"{s4:.0f} ns", verdict(s4 <= 150)))
    rows.append(("`send` ÷ raw `try_send`, 4 producers", "≤ 2×", f"{s4 / c4:.1f}× ({c4:.0f} ns raw)", verdict(s4 <= 2 * c4)))
sv = median_ns("send", "posthaste_value", "1")
if sv:
    rows.append(("`send` of a `serde_json::Value` median, 1 producer", "≤ 80 ns", f"{sv:.0f} ns", verdict(sv <= 80)))

e2e = {r["name"]: r for r in load("e2e.json")}


def rate(prefix, key="rate"):
    for name, r in e2e.items():
        if name.startswith(prefix) and r["ok"]:
            return r.get(key)
    return None


def exact(name, key="rate"):
    r = e2e.get(name)
    return r.get(key) if r and r["ok"] else None


unbatched, naive, python = rate("posthaste unbatched"), rate("naive"), rate("python")
um, nm = rate("posthaste unbatched", "median"), rate("naive", "median")
if unbatched and naive and um and nm:
    rows.append(("unbatched ÷ naive baseline: parity", "≥ 1.0×",
                 f"best rounds {unbatched / naive:.2f}× ({unbatched:,.0f} vs {naive:,.0f}), medians {um / nm:.2f}× ({um:,.0f} vs {nm:,.0f})",
                 verdict(unbatched >= naive and um >= nm)))
if unbatched and naive:
    rows.append(("unbatched ÷ naive baseline", "≥ 1.3×", f"{unbatched / naive:.2f}× ({unbatched:,.0f} vs {naive:,.0f} events/s)", verdict(unbatched >= 1.3 * naive)))
if unbatched and python:
    rows.append(("unbatched ÷ Python baseline", "≥ 40×", f"{unbatched / python:.0f}× ({python:,.0f} events/s)", verdict(unbatched >= 40 * python)))
for label in ("JSON array", "NDJSON", "JSON array + gzip"):
    r = rate(f"posthaste batched, {label}")
    if r is not None:
        rows.append((f"batched, {label}", "≥ 1,000,000 events/s", f"{r:,.0f} events/s", verdict(r >= 1_000_000)))

limit = exact("wrk limit")
for kind in ("Values", "pre-encoded events"):
    array = exact(f"posthaste batched, pre-built {kind}, JSON array")
    nd = exact(f"posthaste batched, pre-built {kind}, NDJSON")
    gz = exact(f"posthaste batched, pre-built {kind}, JSON array + gzip")
    if array and limit:
        rows.append((f"batched, pre-built {kind}, JSON array ÷ the sink's wrk limit ({limit:,.0f} events/s)", "≥ 40 %",
                     f"{100 * array / limit:.0f} % ({array:,.0f} events/s)", verdict(array >= 0.4 * limit)))
    if array and nd:
        rows.append((f"batched, pre-built {kind}: NDJSON ÷ JSON array", "≥ 1.0×", f"{nd / array:.2f}× ({nd:,.0f} events/s)",
                     verdict(nd >= array)))
    if array and gz:
        rows.append((f"batched, pre-built {kind}: gzip level 1 ÷ uncompressed", "≥ 60 %", f"{100 * gz / array:.0f} % ({gz:,.0f} events/s)",
                     verdict(gz >= 0.6 * array)))

overhead = load("overhead.json")
for r in overhead:
    if r.get("kind") == "cpu" and r["name"] in ("posthaste batched", "posthaste unbatched"):
        rows.append((f"CPU overhead at 10k events/s, {r['name'].removeprefix('posthaste ')}", "≤ 3 %",
                     f"{r['cpu_overhead_percent']:+.1f} % CPU time, {r['slowdown_percent']:+.1f} % wall time",
                     verdict(r["cpu_overhead_percent"] <= 3)))
    if r.get("kind") == "outage":
        samples = [s for s in r["rss_samples"] if s]
        if len(samples) >= 6:
            mib = lambda b: b / 1048576
            growth = mib(samples[-1]) - mib(samples[4])
            rows.append((f"memory during a {r['seconds']} s outage", "flat",
                         f"RSS {mib(samples[4]):.1f} MiB at 5 s → {mib(samples[-1]):.1f} MiB at {len(samples)} s (max {mib(max(samples)):.1f})",
                         verdict(abs(growth) < 4)))

print(f"Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}")
try:
    with open("/proc/loadavg") as f:
        print(f"Load average after the run: {' '.join(f.read().split()[:3])}")
except OSError:
    pass
print()
print("| target | wanted | measured | |")
print("|---|---|---|---|")
for row in rows:
    print("| " + " | ".join(row) + " |")
print()
print("| end to end (one producer, 2 workers/threads, ~230-byte events) | events/s (best round) | median | requests |")
print("|---|---:|---:|---:|")
for name, r in e2e.items():
    if name == "wrk limit":
        print(f"| the sink's own limit, 500-event JSON arrays pushed by wrk | {r['rate']:,.0f} | | |")
        continue
    print(f"| {name}{'' if r['ok'] else ' (did not finish)'} | {r['rate']:,.0f} | {r.get('median', r['rate']):,.0f} | {r['requests']:,} |")
