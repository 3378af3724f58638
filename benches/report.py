#!/usr/bin/env python3
"""Reads criterion's estimates after `cargo bench --bench gate` and prints them as a markdown
table; draws the decision cost against snapshot size, for the gate, its floor and the peers,
as an SVG.

    python3 benches/report.py [criterion dir] [svg path]

Defaults: $CARGO_TARGET_DIR/criterion (or target/criterion) and benches/decision-cost.svg.
Only the standard library is used.
"""

import json
import math
import os
import sys


def estimates(root):
    """Every benchmark's full id and its mean, median and low/high bounds, in nanoseconds."""
    found = {}
    for directory, _, files in os.walk(root):
        if not directory.endswith(os.sep + "new") or "benchmark.json" not in files:
            continue
        with open(os.path.join(directory, "benchmark.json")) as handle:
            full_id = json.load(handle)["full_id"]
        with open(os.path.join(directory, "estimates.json")) as handle:
            values = json.load(handle)
        mean = values["mean"]
        found[full_id] = {
            "mean": mean["point_estimate"],
            "low": mean["confidence_interval"]["lower_bound"],
            "high": mean["confidence_interval"]["upper_bound"],
            "median": values["median"]["point_estimate"],
        }
    return found


def pretty(nanoseconds):
    if nanoseconds >= 1e6:
        return f"{nanoseconds / 1e6:.1f} ms"
    if nanoseconds >= 1e3:
        return f"{nanoseconds / 1e3:.2f} µs"
    return f"{nanoseconds:.1f} ns"


SIZES = [("10", 10), ("10k", 10_000), ("1M", 1_000_000)]

SERIES = [
    ("gate, hot key", "decision/{}/allow_listed/hot", "#1f77b4", ""),
    ("gate, random keys", "decision/{}/allow_listed/random", "#1f77b4", "6,4"),
    ("floor, hot key", "decision/{}/floor/hot", "#7f7f7f", ""),
    ("floor, random keys", "decision/{}/floor/random", "#7f7f7f", "6,4"),
    ("cedar (request + authorize)", "cedar", "#d62728", ""),
    ("casbin, cached", "peers/{}/casbin_cached/allow_listed", "#2ca02c", ""),
    ("casbin", "peers/{}/casbin/allow_listed", "#2ca02c", "2,3"),
]


def value(found, pattern, label):
    if pattern == "cedar":
        request = found.get(f"peers/{label}/cedar_request/allow_listed")
        authorize = found.get(f"peers/{label}/cedar_authorize/allow_listed")
        if request and authorize:
            return request["mean"] + authorize["mean"]
        return None
    entry = found.get(pattern.format(label))
    return entry["mean"] if entry else None


def svg(found, path):
    width, height, left, right, top, bottom = 760, 460, 70, 230, 20, 50
    low, high = 10.0, 100_000.0
    points = {
        name: [(count, value(found, pattern, label)) for label, count in SIZES]
        for name, pattern, _, _ in SERIES
    }

    def x(count):
        return left + (math.log10(count) - 1) / 5 * (width - left - right)

    def y(nanoseconds):
        share = (math.log10(nanoseconds) - math.log10(low)) / (math.log10(high) - math.log10(low))
        return top + (1 - share) * (height - top - bottom)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for exponent in range(1, 6):
        level = 10**exponent
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(level):.1f}" y2="{y(level):.1f}" '
            'stroke="#ddd"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y(level) + 4:.1f}" text-anchor="end">{pretty(level)}</text>'
        )
    for label, count in SIZES:
        out.append(
            f'<text x="{x(count):.1f}" y="{height - bottom + 18}" text-anchor="middle">'
            f"{label} APIs</text>"
        )
    out.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle">'
        "snapshot size (log scale); time per decision (log scale), lower is better</text>"
    )
    for row, (name, _, colour, dash) in enumerate(SERIES):
        known = [(count, ns) for count, ns in points[name] if ns]
        if not known:
            continue
        line = " ".join(f"{x(count):.1f},{y(ns):.1f}" for count, ns in known)
        style = f'stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2" {style}/>'
        )
        for count, ns in known:
            out.append(f'<circle cx="{x(count):.1f}" cy="{y(ns):.1f}" r="3" fill="{colour}"/>')
        legend_y = top + 10 + row * 20
        out.append(
            f'<line x1="{width - right + 15}" x2="{width - right + 45}" y1="{legend_y}" '
            f'y2="{legend_y}" stroke="{colour}" stroke-width="2" {style}/>'
        )
        out.append(f'<text x="{width - right + 50}" y="{legend_y + 4}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as handle:
        handle.write("\n".join(out) + "\n")


def main():
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "criterion")
    path = sys.argv[2] if len(sys.argv) > 2 else os.path.join("benches", "decision-cost.svg")
    found = estimates(root)

    print("| benchmark | mean | 95% interval | median |")
    print("|---|---|---|---|")
    for full_id in sorted(found):
        entry = found[full_id]
        print(
            f"| `{full_id}` | {pretty(entry['mean'])} | {pretty(entry['low'])} – "
            f"{pretty(entry['high'])} | {pretty(entry['median'])} |"
        )
    svg(found, path)
    print(f"\nwrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
