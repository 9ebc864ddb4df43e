#!/usr/bin/env python3
"""Roofline plot of a benchmark JSON (build/bench/flashmla_bench --json or python -m flash_mla.bench --json).

    python scripts/plot_roofline.py BENCH.json [OUT.png] [--title TEXT]

x: arithmetic intensity FLOP/byte of each row (ANCHORS.md's FLOP and byte formulas, as stored
in the JSON); y: achieved TFLOPS. The measured ceilings of the same run are drawn: the bandwidth
slope (read GB/s x intensity) and the compute roof (GEMM TFLOPS), meeting at the ridge point.
Log-log axes; every point is labelled (b, s_q, h_q, s_k).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    with open(path) as f:
        data = json.load(f)
    rows = [r for r in data.get("rows", []) if r.get("us_median") and r.get("bytes") and r.get("flop")]
    if not rows:
        raise SystemExit(f"{path}: no timed rows")
    ceil = data.get("ceilings") or {}
    if not ceil.get("read_gbps") or not ceil.get("gemm_tflops"):
        raise SystemExit(f"{path}: missing measured ceilings (read_gbps, gemm_tflops)")
    return data, rows, ceil


def plot(data, rows, ceil, out_path, title=None):
    bw = ceil["read_gbps"] * 1e9          # bytes/s
    peak = ceil["gemm_tflops"]            # TFLOPS
    ridge = peak * 1e12 / bw              # FLOP/byte where the two ceilings meet

    xs = [r["flop"] / r["bytes"] for r in rows]
    ys = [r["flop"] / (r["us_median"] * 1e-6) / 1e12 for r in rows]

    lo = min(min(xs), ridge) / 2.0
    hi = max(max(xs), ridge) * 2.0
    fig, ax = plt.subplots(figsize=(11, 7), dpi=120)
    ax.set_xscale("log")
    ax.set_yscale("log")

    # Ceilings: memory slope up to the ridge, flat compute roof after it.
    ax.plot([lo, ridge], [lo * bw / 1e12, peak], color="tab:blue", lw=2,
            label=f"streaming read {ceil['read_gbps']:.0f} GB/s (measured)")
    ax.plot([ridge, hi], [peak, peak], color="tab:red", lw=2,
            label=f"bf16 GEMM {peak:.0f} TFLOPS (measured)")
    ax.axvline(ridge, color="grey", ls=":", lw=1)
    ax.annotate(f"ridge {ridge:.0f} FLOP/B", (ridge, peak), textcoords="offset points", xytext=(4, -14),
                fontsize=8, color="grey")

    groups = {}
    for r, x, y in zip(rows, xs, ys):
        groups.setdefault((r["b"] == 128, r["s_q"]), []).append((r, x, y))
    styles = {(True, 1): ("o", "tab:blue"), (True, 2): ("s", "tab:orange"),
              (False, 1): ("D", "tab:green"), (False, 2): ("D", "tab:purple")}
    for (is_grid, s_q), pts in sorted(groups.items()):
        marker, color = styles.get((is_grid, s_q), ("^", "tab:grey"))
        label = f"{'b=128 varlen' if is_grid else 'small batch, fixed length'}, s_q={s_q}"
        ax.scatter([p[1] for p in pts], [p[2] for p in pts], marker=marker, s=30 if is_grid else 46,
                   zorder=3 if is_grid else 4, label=label, facecolors=color if is_grid else "none",
                   edgecolors=color, linewidths=1.2)

    # Rows of one h_q*s_q share (almost) one intensity: stack their labels beside the cluster,
    # alternating right and left, each joined to its point by a thin leader.
    clusters = {}
    for r, x, y in zip(rows, xs, ys):
        clusters.setdefault(round(math.log10(x), 1), []).append((r, x, y))
    for pts in clusters.values():
        pts.sort(key=lambda p: -p[2])
        right = pts[0::2]
        left = pts[1::2]
        for side, members in ((1, right), (-1, left)):
            n = len(members)
            for k, (r, x, y) in enumerate(members):
                dy = 9 * ((n - 1) / 2.0 - k)
                ax.annotate(f"({r['b']},{r['s_q']},{r['h_q']},{r['s_k']})", (x, y), textcoords="offset points",
                            xytext=(side * 28, dy), fontsize=6, ha="left" if side > 0 else "right",
                            va="center", arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.5"})

    ymin = min(min(ys), lo * bw / 1e12) / 1.5
    ax.set_xlim(lo, hi)
    ax.set_ylim(ymin, peak * 1.6)
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("achieved TFLOPS")
    dev = data.get("device", {})
    src = data.get("tool", data.get("source", "bench"))
    ax.set_title(title or f"flashmla decode roofline: {dev.get('name', '?')} ({src}); labels (b, s_q, h_q, s_k)")
    ax.grid(True, which="both", ls=":", lw=0.5)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("json_path")
    p.add_argument("out_png", nargs="?", default="roofline.png")
    p.add_argument("--title", default=None)
    args = p.parse_args(argv)
    data, rows, ceil = load(args.json_path)
    plot(data, rows, ceil, args.out_png, args.title)
    print(f"wrote {args.out_png} ({len(rows)} points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
