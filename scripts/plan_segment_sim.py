#!/usr/bin/env python3
"""The split plan's critical part under a segment-cost model, for fixed costs F = 2..5.

Re-implements the plan of src/common/split_plan.h (request cost = pages + F, the candidate spans:
equal spans over n = parts - k busy parts and the largest request's cost; the pick of plan_cost_scaled) on the benchmark grid's lengths
(Python's random seeded 0, int(max(N(s_k, s_k / 2), s_q)), as bench/ and ANCHORS.md), and scores each
plan by its slowest part: pages + segments x X, X the kernel's measured segment cost in pages
(perf-log entry 124: seesaw ~4.3, one-page ~2.5; narrow assumed 2.0). A model for predictions,
not a measurement (perf-log entry 125).

    python3 scripts/plan_segment_sim.py                              (automatic: the one-page kernel)
    SIM_SCHEDULE=seesaw_bound python3 scripts/plan_segment_sim.py    (the picks of entries 119-129)
"""
import math
import os
import random

SEGMENT_PAGES = {"seesaw": 4.3, "one_page": 2.5, "narrow": 2.0}
SLOT_COST = 4
COMBINE_COST_SCALED = 16   # plan::kCombineCostScaled, 1/64 units


def nblk(length):
    return 0 if length <= 0 else -(-length // 64)


def lengths(b, s_k, varlen, s_q):
    if not varlen:
        return [s_k] * b
    rng = random.Random(0)
    return [int(max(rng.normalvariate(s_k, s_k / 2), s_q)) for _ in range(b)]


def plan(lens, span, fixed):
    """Partial slots and [pages, segments] of every busy part, the lengths cut at `span` units."""
    total = sum(nblk(x) + fixed for x in lens)
    parts = [[0, 0] for _ in range(-(-total // span))]
    start, slots = 0, 0
    for x in lens:
        n = nblk(x)
        first_pos = start + fixed
        if n > 0:
            first, last = first_pos // span, (first_pos + n - 1) // span
            if last > first:
                slots += last - first + 1
            for p in range(first, last + 1):
                parts[p][0] += min(first_pos + n, (p + 1) * span) - max(first_pos, p * span)
                parts[p][1] += 1
        start += n + fixed
    return slots, parts


def pick_span(lens, parts, rows, fixed):
    """plan::pick_plan_candidate's span."""
    total = sum(nblk(x) + fixed for x in lens)
    spans = [max(1, -(-total // (parts - k))) for k in range(min(8, parts // 16) + 1)]
    spans.append(max(spans[0], max(nblk(x) + fixed for x in lens)))
    best = None
    for span in spans:
        slots, _ = plan(lens, span, fixed)
        split = fixed * 64 + COMBINE_COST_SCALED if slots > 0 else 0
        cost = (span * 64 + split) * parts + SLOT_COST * slots * min(rows, 64)
        if best is None or cost < best[0]:
            best = (cost, span)
    return best[1]


def schedule(b, s_q, h_q, s_k):
    rows = s_q * h_q
    if rows <= 32:
        return "narrow"
    if os.environ.get("SIM_SCHEDULE") == "seesaw_bound":   # the grid's picks of entries 119-129 (plan::seesaw_pays)
        return "seesaw" if b >= 128 and (rows >= 128 or s_k >= 8192) else "one_page"
    return "one_page"   # automatic since perf-log entry 130


def main():
    grid = [(128, s_q, h, s_k, True) for h in (128, 64, 32, 16) for s_q in (1, 2) for s_k in (4096, 8192, 16384, 32768)]
    grid += [(b, 1, h, 32768, False) for b in (1, 4, 16) for h in (128, 16)]
    fixed_costs = (2, 3, 4, 5)
    logs = {f: 0.0 for f in fixed_costs}
    for b, s_q, h_q, s_k, varlen in grid:
        rows = s_q * h_q
        parts = max(1, 132 // -(-rows // 64))
        kind = schedule(b, s_q, h_q, s_k)
        lens = lengths(b, s_k, varlen, s_q)
        cells, base = [], None
        for f in fixed_costs:
            _, per_part = plan(lens, pick_span(lens, parts, rows, f), f)
            t = max(p + SEGMENT_PAGES[kind] * s for p, s in per_part)
            base = base or t
            logs[f] += math.log(t / base)
            cells.append(f"F{f} {t:7.1f} ({t / base:.3f})")
        print(f"{b},{s_q},{h_q},{s_k} {kind:8s} " + " | ".join(cells))
    print("grid geomean against F = 2:", {f: round(math.exp(v / len(grid)), 4) for f, v in logs.items()})


if __name__ == "__main__":
    main()
