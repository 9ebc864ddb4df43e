"""Does FlashMLA itself meet SPEC section 1's tolerances? The pytest grid's cases, run through both
flash_mla and FlashMLA (flashmla_peer) on the same inputs and checked against the same float64
reference with the tests' own assertion (tests/python/mla_helpers.py).

    python bench/peer/spec_check.py [--json FILE] [--limit N]

Only the cases FlashMLA takes: h_kv = 1 and contiguous q and cache. Each case runs twice:
- as the tests build it, with NaN in every cache row that is not a visible token;
- "clean": the same values with those rows zeroed, so that a failure there is arithmetic, not
  a NaN read past a request's length.

Reports, per kernel, how many cases pass and how the failures split by kind (lse tolerance, out
tolerance, cosine, NaN), and the worst lse error over its tolerance. Benchmark tooling: it asserts
nothing and is not part of the test suite.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.abspath(os.path.join(_HERE, "..", ".."))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.join(_ROOT, "tests", "python"))

import mla_helpers as H  # noqa: E402


def _load_grid():
    spec = importlib.util.spec_from_file_location("test_correctness",
                                                  os.path.join(_ROOT, "tests", "python", "test_correctness.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.GRID, module._DT, module._case_id


def _failure_kind(message: str) -> str:
    if "NaN" in message:
        return "nan"
    if message.startswith("lse"):
        return "lse"
    if "cosine" in message:
        return "cosine"
    if message.startswith("out"):
        return "out"
    return "other"


def _lse_margin(lse, ref_lse):
    """Largest |lse - ref| / tolerance over the entries where both are finite."""
    l = lse.to(torch.float64)
    finite = torch.isfinite(ref_lse) & torch.isfinite(l)
    if not finite.any():
        return 0.0
    err = (l - ref_lse).abs()[finite]
    return float((err / H.lse_tolerance(ref_lse[finite])).max())


def _run(kernel, case, causal):
    import flash_mla
    import flashmla_peer

    module = flash_mla if kernel == "flash_mla" else flashmla_peer
    meta, splits = module.get_mla_metadata(case.cache_seqlens, case.ntok, case.h_kv)
    return module.flash_mla_with_kvcache(case.q, case.k_cache, case.block_table, case.cache_seqlens, 512,
                                         meta, splits, causal=causal)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the per-case results here")
    parser.add_argument("--limit", type=int, default=0, help="first N eligible cases only")
    args = parser.parse_args()

    grid, dtypes, case_id = _load_grid()
    eligible = [(i, c) for i, c in enumerate(grid) if c[4] == 1]
    if args.limit:
        eligible = eligible[: args.limit]
    kernels = ["flash_mla", "flashmla_peer"]
    results = []
    for index, params in eligible:
        b, s_q, s_k, h_q, h_kv, varlen, causal, dt = params
        case = H.make_case(b, s_q, s_k, h_q, h_kv, varlen, causal, dtypes[dt], seed=1000 + 17 * index)
        ref_out, ref_lse = case.reference()
        poisoned = torch.isnan(case.k_cache)
        for variant in ["nan", "clean"]:
            if variant == "clean":
                case.k_cache.masked_fill_(poisoned, 0.0)
            for kernel in kernels:
                row = {"case": case_id(params), "cache": variant, "kernel": kernel}
                try:
                    out, lse = _run(kernel, case, causal)
                    torch.cuda.synchronize()
                except Exception as e:  # a shape the kernel does not take
                    row.update(status="unsupported", message=str(e).splitlines()[0][:160])
                    results.append(row)
                    continue
                row["lse_margin"] = _lse_margin(lse, ref_lse)
                try:
                    H.assert_matches_reference(out, lse, ref_out, ref_lse, case.dtype, row["case"])
                    row["status"] = "pass"
                except AssertionError as e:
                    row.update(status="fail", kind=_failure_kind(str(e)), message=str(e)[:200])
                results.append(row)

    print(f"{len(eligible)} cases of the pytest grid with h_kv = 1; each with a NaN-poisoned and a clean cache\n")
    print("| kernel | cache | pass | fail: lse | fail: out | fail: cosine | fail: NaN | unsupported | worst lse err / tol |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kernel in kernels:
        for variant in ["nan", "clean"]:
            rows = [r for r in results if r["kernel"] == kernel and r["cache"] == variant]
            count = lambda pred: sum(1 for r in rows if pred(r))  # noqa: E731
            worst = max((r.get("lse_margin", 0.0) for r in rows), default=0.0)
            print(f"| {kernel} | {variant} | {count(lambda r: r['status'] == 'pass')} | "
                  f"{count(lambda r: r.get('kind') == 'lse')} | {count(lambda r: r.get('kind') == 'out')} | "
                  f"{count(lambda r: r.get('kind') == 'cosine')} | {count(lambda r: r.get('kind') == 'nan')} | "
                  f"{count(lambda r: r['status'] == 'unsupported')} | {worst:.3g} |")
    print("\nfailures (first 40):")
    for r in [r for r in results if r["status"] != "pass"][:40]:
        print(f"  {r['kernel']:14s} {r['cache']:5s} {r['case']}: {r['status']} {r.get('kind', '')} {r.get('message', '')}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
