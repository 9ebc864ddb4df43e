#!/usr/bin/env python3
"""Where a decode launch's page stream runs below the memory rate: reads the per-CTA CSVs that the
page-timeline build writes (FLASHMLA_EXPERIMENT_CTA_SPANS + FLASHMLA_EXPERIMENT_PAGE_TIMELINE, through
scripts/cta_spans.sh) and prints, per row:
  - the median and spread of each event a CTA passes (Q landed, page k issued and landed, epilogue,
    end), in us from the launch's first CTA start;
  - the grid's bytes landed per time bin (a page counted when it has landed whole) and the pages in
    flight (issued, not landed) at each bin's end: bins where few pages are in flight are the
    stream's gaps.

    python3 scripts/page_timeline.py out/cta_spans/1_1_16_32768.csv [...]   [--bin-us 0.5]
"""
import argparse
import csv
import os

import numpy as np

PAGE_BYTES = 64 * 576 * 2   # one 64-token page of one kv head, bf16 or fp16


def load(path):
    rows = list(csv.DictReader(open(path)))
    if not rows or "q_landed_ns" not in rows[0]:
        raise SystemExit(f"{path}: no page-timeline columns (build with FLASHMLA_EXPERIMENT_PAGE_TIMELINE)")
    n_pages = sum(1 for k in rows[0] if k.startswith("issue"))
    col = lambda k: np.array([float(r[k]) for r in rows]) / 1e3   # us; -1 ns reads as -0.001
    issue = np.stack([col(f"issue{k}_ns") for k in range(n_pages)], axis=1)
    landed = np.stack([col(f"landed{k}_ns") for k in range(n_pages)], axis=1)
    return {
        "start": col("start_ns"), "end": col("end_ns"), "q": col("q_landed_ns"), "epi": col("epilogue_ns"),
        "pages": np.array([int(r["pages"]) for r in rows]), "issue": issue, "landed": landed,
        "summed": col("epi_summed_ns"), "stored": col("epi_stored_ns"),
        "waited": np.stack([col(f"waited{k}_ns") for k in range(n_pages)], axis=1),
    }


def spread(x):
    x = x[x >= 0]
    if x.size == 0:
        return "-"
    p10, p50, p90 = np.percentile(x, [10, 50, 90])
    return f"{p50:6.2f} ({p10:.2f}-{p90:.2f})"


def report(path, bin_us):
    d = load(path)
    n_ctas = len(d["start"])
    recorded = d["issue"].shape[1]
    print(f"## {os.path.basename(path)}: {n_ctas} CTAs, pages a CTA {d['pages'].mean():.2f} "
          f"(min {d['pages'].min()}, max {d['pages'].max()}); first {recorded} pages recorded")
    print("event: median (p10-p90) us from the first CTA start")
    print(f"  start         {spread(d['start'])}")
    print(f"  Q landed      {spread(d['q'])}")
    for k in range(min(recorded, int(d['pages'].max()))):
        iss, lan = d["issue"][:, k], d["landed"][:, k]
        ok = (iss >= 0) & (lan >= 0)
        lat = spread(lan[ok] - iss[ok]) if ok.any() else "-"
        wai = d["waited"][:, k]
        print(f"  page {k:2d}: issued {spread(iss)}  landed {spread(lan)}  latency {lat}  consumer took it {spread(wai)}")
    print(f"  epilogue      {spread(d['epi'])}")
    print(f"  sums done     {spread(d['summed'])}")
    print(f"  O stored      {spread(d['stored'])}")
    print(f"  end           {spread(d['end'])}")

    # Per CTA: the intervals around its last page and its epilogue.
    has = (d["pages"] > 0) & (d["pages"] <= recorded)
    last = np.array([d["landed"][i, n - 1] if h else -1 for i, (n, h) in enumerate(zip(d["pages"], has))])
    ok = has & (last >= 0) & (d["epi"] >= 0)
    if ok.any():
        print("per CTA, us: last page landed -> epilogue", spread(d["epi"][ok] - last[ok]),
              "| epilogue -> sums", spread(d["summed"][ok] - d["epi"][ok]),
              "| sums -> stores issued", spread(d["stored"][ok] - d["summed"][ok]),
              "| stores -> end", spread(d["end"][ok] - d["stored"][ok]),
              "| start -> first issue", spread(d["issue"][ok, 0] - d["start"][ok]))
    # Only CTAs whose every page was recorded count towards the stream's bins.
    full = d["pages"] <= recorded
    iss = d["issue"][full]
    lan = d["landed"][full]
    t_end = d["end"].max()
    edges = np.arange(0.0, t_end + bin_us, bin_us)
    landed_times = lan[lan >= 0]
    counts, _ = np.histogram(landed_times, bins=edges)
    print(f"stream over time ({full.sum()} of {n_ctas} CTAs, {bin_us} us bins): "
          f"GB/s landed | pages in flight at the bin's end | CTAs started, in epilogue, ended")
    for b in range(len(counts)):
        t1 = edges[b + 1]
        in_flight = int(((iss >= 0) & (iss <= t1) & ((lan < 0) | (lan > t1))).sum())
        gbs = counts[b] * PAGE_BYTES / (bin_us * 1e3)
        started = int((d["start"] <= t1).sum())
        in_epi = int(((d["epi"] >= 0) & (d["epi"] <= t1) & (d["end"] > t1)).sum())
        ended = int((d["end"] <= t1).sum())
        bar = "#" * int(round(gbs / 200))
        print(f"  {edges[b]:6.2f}-{t1:6.2f}  {gbs:6.0f}  {in_flight:4d}  {started:4d} {in_epi:4d} {ended:4d}  {bar}")
    total = landed_times.size * PAGE_BYTES
    first, last = (landed_times.min(), landed_times.max()) if landed_times.size else (0, 0)
    print(f"bytes landed {total / 1e6:.1f} MB; first page landed at {first:.2f} us, last at {last:.2f} us; "
          f"{total / max(last - d['start'].min(), 1e-9) / 1e3:.0f} GB/s from the first start to the last landing")
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--bin-us", type=float, default=0.5)
    a = ap.parse_args()
    for path in a.csv:
        report(path, a.bin_us)


if __name__ == "__main__":
    main()
