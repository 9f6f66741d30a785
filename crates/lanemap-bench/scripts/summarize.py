#!/usr/bin/env python3
"""Joins the results.json of several lanemap-bench runs into one Markdown summary.

Usage: summarize.py DIR [DIR ...] > summary.md

For every block (workload x distribution x keys x threads) of every run it gives the best peer
and each lanemap map as a ratio to it, then the ratios that lanemap's performance targets are
stated in. Every ratio is computed per repetition (the maps were interleaved within each
repetition, so each pair of figures saw the same machine) and reported as the median with the
smallest and largest per-repetition ratio.
"""

import json
import statistics
import sys

LANEMAP = ["lanemap ShardedMap", "lanemap HashMap", "lanemap HashMap (pinned per thread)"]
SHORT = {
    "lanemap ShardedMap": "ShardedMap",
    "lanemap HashMap": "HashMap",
    "lanemap HashMap (pinned per thread)": "HashMap (pinned)",
}
# (what the target compares, lanemap map, peer, applies to workloads, target)
TARGETS = [
    ("HashMap (pinned) ÷ papaya (guard per thread)", "lanemap HashMap (pinned per thread)",
     "papaya (guard per thread)", {"read-heavy"}, 1.1),
    ("HashMap ÷ dashmap", "lanemap HashMap", "dashmap", {"exchange", "rapid-grow"}, 0.9),
    ("HashMap (pinned) ÷ dashmap", "lanemap HashMap (pinned per thread)", "dashmap",
     {"exchange", "rapid-grow"}, 0.9),
]


def per_rep(a, b):
    """Median, min and max of a's per-repetition throughput over b's."""
    ratios = [x / y for x, y in zip(a["mops"], b["mops"]) if y > 0]
    if not ratios:
        return None
    return statistics.median(ratios), min(ratios), max(ratios)


def fmt(ratio):
    if ratio is None:
        return "–"
    median, low, high = ratio
    return f"{median:.2f}× ({low:.2f}–{high:.2f})"


def html(text):
    """Escapes a map name such as `RwLock<HashMap>` for a Markdown table."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def title(block):
    case = block["case"]
    dist = case["dist"]["kind"]
    if dist == "zipf":
        dist = f"zipf {case['dist']['exponent']}"
    keys = case["keys"]
    size = f"2^{keys.bit_length() - 1}" if keys & (keys - 1) == 0 else str(keys)
    return f"{case['workload']['name']} · {dist} · {size} keys · {block['threads']}t"


def main(dirs):
    blocks = []
    env = None
    for d in dirs:
        with open(f"{d}/results.json") as f:
            run = json.load(f)
        env = env or run["environment"]
        blocks += run["results"]["blocks"]

    out = []
    out.append("| block | best peer | " + " | ".join(f"{SHORT[m]} × best peer" for m in LANEMAP)
               + " | best lanemap × ideal |")
    out.append("| :-- | :-- | " + " | ".join("--:" for _ in LANEMAP) + " | --: |")
    for block in blocks:
        rows = {r["map"]: r for r in block["rows"]}
        best = rows.get(block["best_peer"])
        if best is None:
            continue
        cells = [fmt(per_rep(rows[m], best)) if m in rows else "–" for m in LANEMAP]
        ideals = [rows[m]["vs_ideal"] for m in LANEMAP if rows.get(m, {}).get("vs_ideal")]
        ideal = f"{max(ideals):.2f}×" if ideals else "–"
        out.append(f"| {title(block)} | {html(block['best_peer'])} | " + " | ".join(cells)
                   + f" | {ideal} |")
    out.append("")
    out.append("The ratios lanemap::HashMap's targets are stated in (same blocks; ✓ where the "
               "median meets the target):")
    out.append("")
    out.append("| block | ratio | measured | target |")
    out.append("| :-- | :-- | --: | --: |")
    for block in blocks:
        rows = {r["map"]: r for r in block["rows"]}
        name = block["case"]["workload"]["name"]
        for what, mine, peer, workloads, target in TARGETS:
            what = html(what)
            if name in workloads and mine in rows and peer in rows:
                ratio = per_rep(rows[mine], rows[peer])
                mark = " ✓" if ratio and ratio[0] >= target else ""
                out.append(f"| {title(block)} | {what} | {fmt(ratio)}{mark} | ≥ {target}× |")
        if name == "read-heavy" and block["threads"] == 1:
            limit = rows.get("limit: hashbrown, 1 thread")
            mine = rows.get("lanemap HashMap (pinned per thread)")
            if limit and mine:
                ratio = per_rep(mine, limit)
                mark = " ✓" if ratio and ratio[0] >= 0.85 else ""
                out.append(f"| {title(block)} | HashMap (pinned) ÷ limit | {fmt(ratio)}{mark} "
                           "| ≥ 0.85× |")
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: summarize.py DIR [DIR ...]  (folders written by lanemap-bench run --out)")
    main(sys.argv[1:])
