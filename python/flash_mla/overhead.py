"""Host (CPU) overhead per call of the flash_mla entry points, in eager mode.

    python -m flash_mla.overhead [--calls 200] [--rounds 20] [--batch 1] [--seqlen-k 64] [--json]

Method: the GPU is first given a long sleep kernel, so every call under test only enqueues work
and never waits for the GPU; the host wall time of ``calls`` back-to-back calls divided by
``calls`` is the host cost of one call (argument checks, allocation from the caching allocator,
kernel launches, Python wrapper). A round counts only if the sleep kernel was still running
when the timed loop ended (otherwise the host may have waited on a full launch queue and the
round is discarded). The median and the minimum over rounds are reported, with the same
measurement of a trivial torch op (one in-place add on a tiny tensor) as the floor of any
dispatcher call + kernel launch, and the GPU time per decode call (CUDA events, for context).
"""

import argparse
import json
import statistics
import sys
import time

import torch


def _sleep_cycles_per_ms(device):
    """Calibrates torch.cuda._sleep: GPU cycles per millisecond."""
    torch.cuda.synchronize(device)
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    cycles = 10_000_000
    start.record()
    torch.cuda._sleep(cycles)
    end.record()
    end.synchronize()
    ms = start.elapsed_time(end)
    return cycles / max(ms, 1e-3)


def _time_host(fn, calls, rounds, sleep_cycles):
    per_call_us = []
    discarded = 0
    for _ in range(rounds):
        torch.cuda.synchronize()
        torch.cuda._sleep(sleep_cycles)
        marker = torch.cuda.Event()
        marker.record()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        t1 = time.perf_counter()
        gpu_still_busy = not marker.query()
        torch.cuda.synchronize()
        if gpu_still_busy:
            per_call_us.append((t1 - t0) * 1e6 / calls)
        else:
            discarded += 1
    if not per_call_us:
        return {"median_us": None, "min_us": None, "rounds": 0, "discarded_rounds": discarded}
    return {
        "median_us": statistics.median(per_call_us),
        "min_us": min(per_call_us),
        "rounds": len(per_call_us),
        "discarded_rounds": discarded,
    }


def _time_gpu(fn, calls):
    torch.cuda.synchronize()
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) * 1e3 / calls


def measure_host_overhead(
    calls=200,
    rounds=20,
    batch=1,
    seqlen_q=1,
    heads_q=16,
    heads_kv=1,
    seqlen_k=64,
    dtype=torch.bfloat16,
    device="cuda",
):
    """Returns {entry point: {"median_us", "min_us", "rounds", "discarded_rounds"}} plus context."""
    import flash_mla
    from flash_mla import _ops

    device = torch.device(device)
    if device.index is None:  # "cuda" means the current device
        device = torch.device("cuda", torch.cuda.current_device())
    torch.cuda.set_device(device)
    pages = max(1, -(-seqlen_k // 64))
    q = torch.randn((batch, seqlen_q, heads_q, 576), dtype=dtype, device=device)
    k_cache = torch.randn((batch * pages, 64, heads_kv, 576), dtype=dtype, device=device)
    block_table = torch.arange(batch * pages, dtype=torch.int32, device=device).view(batch, pages)
    cache_seqlens = torch.full((batch,), seqlen_k, dtype=torch.int32, device=device)
    ntok = seqlen_q * heads_q // heads_kv
    meta, splits = flash_mla.get_mla_metadata(cache_seqlens, ntok, heads_kv)
    lazy, _ = flash_mla.get_mla_metadata()
    flash_mla.flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, 512, lazy, None)
    scale = 576 ** -0.5
    tiny = torch.zeros(1, device=device)

    entries = {
        "torch_add_floor": lambda: tiny.add_(1),
        "raw_op_fwd_kvcache_mla": lambda: _ops.fwd_kvcache_mla_op(
            q, k_cache, block_table, cache_seqlens, 512, meta, splits, scale, False
        ),
        "flash_mla_with_kvcache": lambda: flash_mla.flash_mla_with_kvcache(
            q, k_cache, block_table, cache_seqlens, 512, meta, splits
        ),
        "flash_mla_with_kvcache_lazy_meta": lambda: flash_mla.flash_mla_with_kvcache(
            q, k_cache, block_table, cache_seqlens, 512, lazy, None
        ),
        "get_mla_metadata": lambda: flash_mla.get_mla_metadata(cache_seqlens, ntok, heads_kv),
    }
    for fn in entries.values():  # warm-up: allocator pools, lazy initialisation
        for _ in range(10):
            fn()
    torch.cuda.synchronize()

    cycles_per_ms = _sleep_cycles_per_ms(device)
    # Generous: 100 us of GPU sleep per call to be timed, so the GPU outlasts the host loop.
    sleep_cycles = int(cycles_per_ms * max(20.0, calls * 0.1))

    results = {name: _time_host(fn, calls, rounds, sleep_cycles) for name, fn in entries.items()}
    results["gpu_us_per_decode_call"] = _time_gpu(entries["flash_mla_with_kvcache"], calls)
    results["config"] = {
        "calls": calls,
        "rounds": rounds,
        "batch": batch,
        "seqlen_q": seqlen_q,
        "heads_q": heads_q,
        "heads_kv": heads_kv,
        "seqlen_k": seqlen_k,
        "dtype": str(dtype),
        "device": torch.cuda.get_device_name(device),
        "num_sm_parts": int(meta.shape[0]),
        "torch": torch.__version__,
        "flash_mla": flash_mla.__version__,
    }
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m flash_mla.overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per timed round (default 200)")
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds (default 20)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seqlen-q", type=int, default=1)
    parser.add_argument("--heads-q", type=int, default=16)
    parser.add_argument("--heads-kv", type=int, default=1)
    parser.add_argument("--seqlen-k", type=int, default=64)
    parser.add_argument("--dtype", choices=["bf16", "fp16"], default="bf16")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("flash_mla.overhead: needs a CUDA device", file=sys.stderr)
        return 2
    results = measure_host_overhead(
        calls=args.calls,
        rounds=args.rounds,
        batch=args.batch,
        seqlen_q=args.seqlen_q,
        heads_q=args.heads_q,
        heads_kv=args.heads_kv,
        seqlen_k=args.seqlen_k,
        dtype=torch.bfloat16 if args.dtype == "bf16" else torch.float16,
    )
    if args.json:
        print(json.dumps(results))
        return 0
    cfg = results["config"]
    print(f"host overhead per call, eager ({cfg['device']}, torch {cfg['torch']}, flash_mla {cfg['flash_mla']})")
    print(f"problem: b={cfg['batch']} s_q={cfg['seqlen_q']} h_q={cfg['heads_q']} h_kv={cfg['heads_kv']} "
          f"s_k={cfg['seqlen_k']} {cfg['dtype']}, num_sm_parts={cfg['num_sm_parts']}; "
          f"{cfg['calls']} calls x {cfg['rounds']} rounds")
    print(f"{'entry point':36s} {'median us':>10s} {'min us':>10s} {'rounds':>7s}")
    for name, r in results.items():
        if not isinstance(r, dict) or "median_us" not in r:
            continue
        if r["median_us"] is None:
            print(f"{name:36s} {'n/a':>10s} {'n/a':>10s} {0:7d}  (GPU never outlasted the host loop)")
        else:
            print(f"{name:36s} {r['median_us']:10.2f} {r['min_us']:10.2f} {r['rounds']:7d}")
    print(f"GPU time per decode call (events): {results['gpu_us_per_decode_call']:.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
