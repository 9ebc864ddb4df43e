#!/usr/bin/env python3
"""How well whole requests pack onto the split plan's parts (docs/perf-log.md, entry 40).

For the benchmark's b = 128 rows (lengths max(N(s_k, s_k/2), s_q), Python's random with seed 0,
as bench/lengths.cpp reproduces), a request costs ceil(len / 64) + 5 units as in the split plan.
Prints the plan's per-part load T = ceil(total / parts) and the smallest makespan of any packing
of whole requests in order (binary search on the makespan, greedy feasibility), which is what a
plan without cuts inside requests could reach. CPU only.
"""
import math
import random


def lengths(s_k, s_q, batch=128):
    random.seed(0)
    return [max(int(random.normalvariate(s_k, s_k / 2)), s_q) for _ in range(batch)]


def fits(costs, parts, cap):
    used, load = 1, 0
    for c in costs:
        if load + c > cap:
            used, load = used + 1, c
        else:
            load += c
    return used <= parts


def best_makespan(costs, parts):
    lo, hi = max(costs), sum(costs)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(costs, parts, mid) else (mid + 1, hi)
    return lo


def main():
    print("| s_k | s_q | parts | T | whole-request makespan | / T | longest request |")
    print("|---|---|---|---|---|---|---|")
    for s_k in (4096, 8192, 16384, 32768):
        for s_q in (1, 2):
            costs = [math.ceil(n / 64) + 5 for n in lengths(s_k, s_q)]
            for parts in (132, 66, 33):
                t = math.ceil(sum(costs) / parts)
                m = best_makespan(costs, parts)
                print(f"| {s_k} | {s_q} | {parts} | {t} | {m} | {m / t:.3f} | {max(costs)} |")


if __name__ == "__main__":
    main()
