#!/usr/bin/env python3
"""How many pages of a range keep P_lo under the narrow kernel's lo rule (R = 32, bf16), on flat
softmaxes: the landed rule against the warp-column-sum rule of docs/perf-log.md entry 116.

Models one warp of one consumer warpgroup: 8 lanes (g), each holding 2 keys of a page for each of
its 4 query columns, with weights P uniform in [lo, 1] (the benchmark's data gives P within ~2% of
the maxima). The first page of a range takes the slow path and keeps lo in both rules.
- landed: a lane keeps lo when dropped + sq > tau^2 * (its smallest column share)^2;
- warp:   a lane keeps lo when dropped + sq > tau^2 * share^2, share = the sum over the 8 lanes of
          each lane's smallest column sum after the previous page, divided by sqrt(8).
Prints, per range length, the mean number of pages a lane keeps lo on. No arguments needed.

  python3 scripts/narrow_lo_rule_model.py [--lo 0.98] [--seed 0]
"""
import argparse
import math
import random

TAU2 = 0.25 ** 2   # kPLoTau2 (decode_pipeline.cuh)
LANES, COLUMNS, KEYS = 8, 4, 2


def pages_with_lo(num_pages: int, rule: str, rng: random.Random, lo: float) -> float:
    dropped = [0.0] * LANES
    sums = [[0.0] * COLUMNS for _ in range(LANES)]
    share = 0.0
    kept = 0.0
    for page in range(num_pages):
        for lane in range(LANES):
            p = [[rng.uniform(lo, 1.0) for _ in range(KEYS)] for _ in range(COLUMNS)]
            sq = sum(x * x for column in p for x in column)
            for c in range(COLUMNS):
                sums[lane][c] += sum(p[c])
            if page == 0:
                keep = True
            elif rule == "landed":
                keep = dropped[lane] + sq > TAU2 * min(sums[lane]) ** 2
            else:
                keep = dropped[lane] + sq > TAU2 * share * share
            if keep:
                kept += 1.0 / LANES
            else:
                dropped[lane] += sq
        share = sum(min(s) for s in sums) / math.sqrt(LANES)
    return kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lo", type=float, default=0.98, help="smallest weight (default 0.98)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    print("| pages a range | landed rule: pages with lo | warp rule: pages with lo |")
    print("|---|---|---|")
    for n in (32, 64, 128, 256, 512):
        print(f"| {n} | {pages_with_lo(n, 'landed', rng, args.lo):.1f} | {pages_with_lo(n, 'warp', rng, args.lo):.1f} |")


if __name__ == "__main__":
    main()
