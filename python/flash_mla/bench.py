"""Benchmark of the flash_mla Python API over shared/ANCHORS.md's rows.

    python -m flash_mla.bench [--rows all|grid|small] [--json FILE] [--cpp-json FILE] [--vs MODULE]

Same recipe as the C++ binary build/bench/flashmla_bench (docs/performance.md): bf16, d=576,
dv=512, h_kv=1, page 64, random permuted block table; b=128 rows draw varlen lengths
max(N(s_k, s_k/2), s_q) truncated to int with Python's random seeded 0 (the C++ binary
reproduces that generator bit for bit), causal=True; the small-batch rows use fixed lengths.
Per row: metadata computed once, then a median over 7 repeats of 20 back-to-back calls timed
with CUDA events. Ceilings (streaming read, bf16 GEMM) are measured through torch in the
same process. Numbers are only ever measured, never filled in.

--vs MODULE times another module with FlashMLA's API (get_mla_metadata, flash_mla_with_kvcache)
in the same process on the same inputs, alternating ours/theirs per repeat.
--cpp-json FILE compares each row with the C++ benchmark's JSON (acceptance: within 5%).
--load FILE re-reads a previous JSON of this script instead of running (no GPU needed).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import random
import statistics
import sys

D_QK = 576
D_V = 512
PAGE = 64
AGREEMENT_TOLERANCE = 0.05

# Quoted from shared/ANCHORS.md (one H200, 132 SMs; ceilings 4173 GB/s read, 797 TFLOPS GEMM).
# Not measured here. (b, s_q, h_q, s_k): (roofline us, FlashMLA us, FA3 us).
ANCHORS = {
    (128, 1, 128, 4096): (184.2, 247.3, 248.6),
    (128, 1, 128, 8192): (368.3, 491.0, 514.4),
    (128, 1, 128, 16384): (736.7, 1020.1, 1058.7),
    (128, 1, 128, 32768): (1473.4, 1975.0, 2103.3),
    (128, 2, 128, 4096): (368.3, 433.3, 476.7),
    (128, 2, 128, 8192): (736.7, 882.8, 997.4),
    (128, 2, 128, 16384): (1473.4, 1877.4, 2018.4),
    (128, 2, 128, 32768): (2946.8, 3838.6, 4230.1),
    (128, 1, 64, 4096): (149.7, 181.7, 203.7),
    (128, 1, 64, 8192): (295.2, 332.1, 352.2),
    (128, 1, 64, 16384): (586.2, 636.7, 714.1),
    (128, 1, 64, 32768): (1168.2, 1247.4, 1420.6),
    (128, 2, 64, 4096): (184.2, 249.4, 255.3),
    (128, 2, 64, 8192): (368.3, 460.1, 502.8),
    (128, 2, 64, 16384): (736.7, 1015.3, 1050.4),
    (128, 2, 64, 32768): (1473.4, 2037.8, 2128.0),
    (128, 1, 32, 4096): (147.6, 169.1, 190.4),
    (128, 1, 32, 8192): (293.1, 310.9, 345.3),
    (128, 1, 32, 16384): (584.1, 604.5, 708.5),
    (128, 1, 32, 32768): (1166.0, 1222.1, 1410.0),
    (128, 2, 32, 4096): (149.7, 181.4, 197.2),
    (128, 2, 32, 8192): (295.2, 332.0, 350.8),
    (128, 2, 32, 16384): (586.2, 636.5, 725.9),
    (128, 2, 32, 32768): (1168.2, 1249.9, 1408.9),
    (128, 1, 16, 4096): (146.5, 164.5, 187.5),
    (128, 1, 16, 8192): (292.0, 295.2, 338.7),
    (128, 1, 16, 16384): (583.0, 582.1, 680.8),
    (128, 1, 16, 32768): (1165.0, 1174.0, 1420.9),
    (128, 2, 16, 4096): (147.6, 168.9, 193.6),
    (128, 2, 16, 8192): (293.1, 312.7, 341.2),
    (128, 2, 16, 16384): (584.1, 604.8, 691.1),
    (128, 2, 16, 32768): (1166.0, 1190.7, 1371.9),
    (1, 1, 128, 32768): (11.5, 64.8, 59.1),
    (1, 1, 16, 32768): (9.1, 57.7, 58.3),
    (4, 1, 128, 32768): (45.8, 79.6, 86.7),
    (4, 1, 16, 32768): (36.2, 52.8, 60.2),
    (16, 1, 128, 32768): (183.2, 226.7, 238.2),
    (16, 1, 16, 32768): (144.9, 156.7, 162.0),
}


# ----------------------------------------------------------------------------- rows and formulas


def make_config(b=128, s_q=1, h_q=128, h_kv=1, s_k=4096, varlen=True, causal=True, dtype="bf16"):
    return {"b": b, "s_q": s_q, "h_q": h_q, "h_kv": h_kv, "s_k": s_k, "varlen": bool(varlen),
            "causal": bool(causal), "dtype": dtype}


def grid_rows():
    return [make_config(128, s_q, h_q, 1, s_k, True, True)
            for h_q in (128, 64, 32, 16) for s_q in (1, 2) for s_k in (4096, 8192, 16384, 32768)]


def small_rows():
    return [make_config(b, 1, h_q, 1, 32768, False, True) for b in (1, 4, 16) for h_q in (128, 16)]


def config_key(c):
    return (c["b"], c["s_q"], c["h_q"], c["h_kv"], c["s_k"], bool(c["varlen"]), bool(c["causal"]), c["dtype"])


def describe(c):
    return (f"b={c['b']} s_q={c['s_q']} h_q={c['h_q']} h_kv={c['h_kv']} s_k={c['s_k']} "
            f"{'varlen' if c['varlen'] else 'fixed'} {'causal' if c['causal'] else 'non-causal'} {c['dtype']}")


def cache_lengths(c, seed=0):
    """max(N(s_k, s_k/2), s_q) truncated to int (varlen) or s_k for every request."""
    if not c["varlen"]:
        return [c["s_k"]] * c["b"]
    rng = random.Random(seed)
    return [int(max(rng.normalvariate(c["s_k"], c["s_k"] / 2), c["s_q"])) for _ in range(c["b"])]


def flop_per_call(c, mean_len):
    return c["b"] * c["h_q"] * c["s_q"] * 2.0 * mean_len * (D_QK + D_V)


def bytes_per_call(c, mean_len):
    return c["b"] * (c["s_q"] * c["h_q"] * D_QK * 2 + mean_len * D_QK * 2 + c["s_q"] * c["h_q"] * D_V * 2)


def roofline_us(flop, nbytes, ceilings):
    return max(flop / (ceilings["gemm_tflops"] * 1e12), nbytes / (ceilings["read_gbps"] * 1e9)) * 1e6


def find_anchor(c):
    """ANCHORS.md row for c when c follows ANCHORS' recipe, else None."""
    if c["dtype"] != "bf16" or c["h_kv"] != 1:
        return None
    recipe = (c["varlen"] and c["causal"]) if c["b"] == 128 else not c["varlen"]
    if not recipe:
        return None
    a = ANCHORS.get((c["b"], c["s_q"], c["h_q"], c["s_k"]))
    if a is None:
        return None
    roof, fm_us, fa3_us = a
    return {"roofline_us": roof, "flashmla_us": fm_us, "flashmla_pct_roofline": 100.0 * roof / fm_us,
            "fa3_us": fa3_us}


def summarize(samples):
    s = sorted(samples)
    med = statistics.median(s)
    return {"us_median": med, "us_min": s[0], "us_max": s[-1],
            "spread_pct": 100.0 * (s[-1] - s[0]) / med if med > 0 else 0.0, "us_samples": list(samples)}


# ----------------------------------------------------------------------------- GPU side (torch)


def _torch():
    import torch  # noqa: PLC0415  (imported lazily: --load/--cpp-json work without torch)
    return torch


def _dtype(name):
    torch = _torch()
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[name]


def device_info(dev):
    torch = _torch()
    p = torch.cuda.get_device_properties(dev)
    return {"name": p.name, "sm_count": p.multi_processor_count,
            "compute_capability": f"{p.major}.{p.minor}",
            "l2_bytes": int(getattr(p, "L2_cache_size", 0) or 0), "memory_bytes": int(p.total_memory),
            "torch": torch.__version__, "cuda_runtime": torch.version.cuda}


def rotation_bytes(dev):
    """Bytes of q/cache copies to rotate through so that a row's inputs are not served from L2."""
    return max(4 * (dev["l2_bytes"] or 50 * 2**20), 256 * 2**20)


def _time_events(fn, n_samples, per_sample, warmup):
    torch = _torch()
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start = torch.cuda.Event(enable_timing=True)
    stop = torch.cuda.Event(enable_timing=True)
    out = []
    for _ in range(n_samples):
        start.record()
        for _ in range(per_sample):
            fn()
        stop.record()
        stop.synchronize()
        out.append(start.elapsed_time(stop) * 1e3 / per_sample)  # us
    return out


def measure_ceilings(read_gib, gemm_n=8192):
    torch = _torch()
    cols = 8192
    free, _ = torch.cuda.mem_get_info()
    nbytes = min(int(read_gib * 2**30), int(free * 0.8))
    rows = nbytes // (cols * 2)
    x = torch.empty(rows, cols, dtype=torch.bfloat16, device="cuda").uniform_(-1, 1)
    read_bytes = x.numel() * x.element_size()
    read_us = _time_events(lambda: x.sum(dim=0), 11, 1, 3)  # column sum: reads every byte once
    del x
    a = torch.empty(gemm_n, gemm_n, dtype=torch.bfloat16, device="cuda").uniform_(-1, 1)
    b = torch.empty(gemm_n, gemm_n, dtype=torch.bfloat16, device="cuda").uniform_(-1, 1)
    gemm_us = _time_events(lambda: torch.matmul(a, b), 9, 5, 5)
    del a, b
    torch.cuda.empty_cache()
    read_samples = [read_bytes / (u * 1e-6) / 1e9 for u in read_us]
    gemm_samples = [2.0 * gemm_n ** 3 / (u * 1e-6) / 1e12 for u in gemm_us]
    return {"read_gbps": statistics.median(read_samples), "read_buffer_bytes": read_bytes,
            "read_samples_gbps": read_samples, "gemm_tflops": statistics.median(gemm_samples),
            "gemm_n": gemm_n, "gemm_samples_tflops": gemm_samples,
            "read_method": "torch column sum x.sum(dim=0) over a bf16 [rows, 8192] tensor",
            "gemm_method": "torch.matmul bf16 8192^3"}


def fill_values(shape, dtype, data):
    """q or cache values. "flashmla": FlashMLA's test recipe, which ANCHORS.md's rows were timed with
    (randn / 10, clamped to [-1, 1]); "uniform": uniform in [-1, 1), this benchmark's recipe until
    docs/perf-log.md entry 81, which timed both alike (same power, same clock)."""
    torch = _torch()
    if data == "flashmla":
        return (torch.randn(shape, dtype=dtype, device="cuda") / 10).clamp_(-1, 1)
    return torch.empty(shape, dtype=dtype, device="cuda").uniform_(-1, 1)


class Workload:
    """Inputs of one configuration: `copies` q/cache pairs sharing one block table and lengths."""

    def __init__(self, c, rotate_bytes, data="flashmla", seed=0, lengths=None):
        """lengths: the requests' cache lengths (b of them); default cache_lengths(c, seed)."""
        torch = _torch()
        self.c = c
        self.lengths = list(lengths) if lengths is not None else cache_lengths(c, seed)
        self.mean_len = sum(self.lengths) / len(self.lengths)
        pages = [(n + PAGE - 1) // PAGE for n in self.lengths]
        self.num_blocks = max(sum(pages), 1)
        max_pages = max(max(pages), 1)
        gen = torch.Generator().manual_seed(0x5EED0001)
        perm = torch.randperm(self.num_blocks, generator=gen, dtype=torch.int64)
        table = torch.zeros(c["b"], max_pages, dtype=torch.int32)
        pos = 0
        for r, n in enumerate(pages):
            table[r, :n] = perm[pos:pos + n].to(torch.int32)
            pos += n
        self.block_table = table.cuda()
        self.cache_seqlens = torch.tensor(self.lengths, dtype=torch.int32, device="cuda")
        dt = _dtype(c["dtype"])
        q_bytes = c["b"] * c["s_q"] * c["h_q"] * D_QK * 2
        cache_bytes = self.num_blocks * PAGE * c["h_kv"] * D_QK * 2
        per_copy = q_bytes + cache_bytes
        copies = 1 if rotate_bytes <= 0 or per_copy >= rotate_bytes else -(-rotate_bytes // per_copy)
        free, _ = torch.cuda.mem_get_info()
        budget = int(free * 0.8)
        if per_copy > budget:
            raise RuntimeError(f"not enough device memory for {describe(c)}: needs {per_copy >> 20} MiB")
        self.copies = max(1, min(copies, 64, budget // per_copy))
        q_shape = (c["b"], c["s_q"], c["h_q"], D_QK)
        k_shape = (self.num_blocks, PAGE, c["h_kv"], D_QK)
        self.q = [fill_values(q_shape, dt, data) for _ in range(self.copies)]
        self.k_cache = [fill_values(k_shape, dt, data) for _ in range(self.copies)]
        torch.cuda.synchronize()

    def metadata(self, mod):
        c = self.c
        return mod.get_mla_metadata(self.cache_seqlens, c["s_q"] * c["h_q"] // c["h_kv"], c["h_kv"])

    def caller(self, mod):
        """fn(k) running call number k of `mod` (metadata computed once, here)."""
        meta, splits = self.metadata(mod)
        c = self.c

        def fn(k):
            i = k % self.copies
            return mod.flash_mla_with_kvcache(self.q[i], self.k_cache[i], self.block_table, self.cache_seqlens,
                                              D_V, meta, splits, causal=c["causal"])
        return fn


def time_rows(fns, warmup, repeats, iters, graph=False):
    """Times each fn(k) in `fns`; per repeat every fn runs once, order alternating per repeat.

    graph: each fn's `iters` calls are captured once into a CUDA graph after the warm-up, and a
    sample replays it: the GPU's time without the host's cost per call."""
    torch = _torch()
    counters = [0] * len(fns)

    def run(j, n):
        for _ in range(n):
            fns[j](counters[j])
            counters[j] += 1

    for j in range(len(fns)):
        run(j, warmup)
    torch.cuda.synchronize()
    graphs = []
    if graph:
        for j in range(len(fns)):
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                run(j, iters)
            g.replay()  # the graph's own first launch, untimed
            graphs.append(g)
        torch.cuda.synchronize()
    start = torch.cuda.Event(enable_timing=True)
    stop = torch.cuda.Event(enable_timing=True)
    samples = [[] for _ in fns]
    for r in range(repeats):
        order = list(range(len(fns)))
        if r % 2:
            order.reverse()
        for j in order:
            start.record()
            if graphs:
                graphs[j].replay()
            else:
                run(j, iters)
            stop.record()
            stop.synchronize()
            samples[j].append(start.elapsed_time(stop) * 1e3 / iters)
    return samples


def reference_decode(q, k_cache, block_table, lengths, causal):
    """float32 reference of one cut-down case (for --check): returns out [b,s_q,h_q,512], lse [b,h_q,s_q]."""
    torch = _torch()
    b, s_q, h_q, _ = q.shape
    h_kv = k_cache.shape[2]
    out = torch.zeros(b, s_q, h_q, D_V, dtype=torch.float32, device=q.device)
    lse = torch.full((b, h_q, s_q), float("inf"), dtype=torch.float32, device=q.device)
    scale = D_QK ** -0.5
    hg = h_q // h_kv
    for r in range(b):
        n = lengths[r]
        if n == 0:
            continue
        pages = block_table[r, :(n + PAGE - 1) // PAGE].long()
        kv = k_cache[pages].reshape(-1, h_kv, D_QK)[:n].float()  # [n, h_kv, 576]
        for g in range(h_kv):
            heads = slice(g * hg, (g + 1) * hg)
            s = torch.einsum("shd,nd->shn", q[r, :, heads].float(), kv[:, g]) * scale  # [s_q, hg, n]
            if causal and s_q > 1:
                j = torch.arange(n, device=q.device)
                limit = n - s_q + torch.arange(s_q, device=q.device)
                s = s.masked_fill((j[None, :] > limit[:, None])[:, None, :], float("-inf"))
            m = torch.logsumexp(s, dim=-1)  # [s_q, hg]
            p = torch.exp(s - m[..., None]).nan_to_num(0.0)
            out[r, :, heads] = torch.einsum("shn,nd->shd", p, kv[:, g, :D_V])
            lse[r, heads] = m.T
    return out, lse


def check_config(mod, c):
    """Cut-down case of c (<= 4 requests, lengths <= 2048) against a float32 torch reference."""
    torch = _torch()
    cut = dict(c, b=min(c["b"], 4), s_k=min(c["s_k"], 2048))
    w = Workload(cut, 0, seed=1)
    out, lse = w.caller(mod)(0)
    ref_out, ref_lse = reference_decode(w.q[0], w.k_cache[0], w.block_table, w.lengths, c["causal"])
    o, ro = out.float(), ref_out
    cos_diff = 1.0 - 2.0 * (o * ro).sum().item() / max((o * o + ro * ro).sum().item(), 1e-30)
    max_abs = (o - ro).abs().max().item()
    lse_abs = (lse.float() - ref_lse).abs().max().item()
    ok = cos_diff <= 5e-6 and lse_abs <= 1e-3 and max_abs <= 2e-2 and bool(torch.isfinite(o).all())
    print(f"check {describe(c)} (cut to b={cut['b']}, len<={cut['s_k']}): out max abs {max_abs:.3g}, "
          f"cos diff {cos_diff:.3g}, lse max abs {lse_abs:.3g}: {'ok' if ok else 'MISMATCH'}", file=sys.stderr)
    return ok


def run_rows(args, configs):
    torch = _torch()
    ours = importlib.import_module(args.module)
    theirs = importlib.import_module(args.vs) if args.vs else None
    torch.cuda.set_device(args.device)
    dev = device_info(args.device)

    if args.check:
        cut_cases = {}  # rows whose cut-down cases coincide are checked once
        for c in configs:
            cut_cases.setdefault(config_key(dict(c, b=min(c["b"], 4), s_k=min(c["s_k"], 2048))), c)
        bad = [c for c in cut_cases.values() if not check_config(ours, c)]
        if bad:
            print(f"error: --check found {len(bad)} mismatching rows; not timing", file=sys.stderr)
            sys.exit(2)

    print("measuring ceilings...", file=sys.stderr)
    ceilings = measure_ceilings(args.read_gib)
    rotate_bytes = rotation_bytes(dev) if args.rotate else 0

    rows = []
    for c in configs:
        w = Workload(c, rotate_bytes, args.data)
        fns = [w.caller(ours)] + ([w.caller(theirs)] if theirs else [])
        samples = time_rows(fns, args.warmup, args.repeats, args.iters, graph=bool(args.graph))
        row = dict(c)
        row.update(mean_len=w.mean_len, copies=w.copies)
        row.update(summarize(samples[0]))
        row["flop"] = flop_per_call(c, w.mean_len)
        row["bytes"] = bytes_per_call(c, w.mean_len)
        sec = row["us_median"] * 1e-6
        row["tflops"] = row["flop"] / sec / 1e12
        row["gbps"] = row["bytes"] / sec / 1e9
        row["roofline_us"] = roofline_us(row["flop"], row["bytes"], ceilings)
        row["pct_roofline"] = 100.0 * row["roofline_us"] / row["us_median"]
        anchor = find_anchor(c)
        row["anchor"] = anchor
        row["vs_flashmla"] = row["pct_roofline"] / anchor["flashmla_pct_roofline"] if anchor else None
        if theirs:
            t = summarize(samples[1])
            row["vs"] = {"module": args.vs, "us_median": t["us_median"], "us_min": t["us_min"],
                         "us_max": t["us_max"], "spread_pct": t["spread_pct"],
                         "ratio_their_over_our": t["us_median"] / row["us_median"]}
            o1, l1 = fns[0](0)
            o2, l2_ = fns[1](0)
            row["vs"]["max_abs_out_diff"] = (o1.float() - o2.float()).abs().max().item()
            finite = torch.isfinite(l1) & torch.isfinite(l2_)
            row["vs"]["max_abs_lse_diff"] = ((l1.float() - l2_.float()).abs()[finite].max().item()
                                            if finite.any() else 0.0)
        msg = f"{describe(c)}: {row['us_median']:.1f} us (spread {row['spread_pct']:.1f}%, {w.copies} copies)"
        if theirs:
            msg += f"; {args.vs}: {row['vs']['us_median']:.1f} us, ratio {row['vs']['ratio_their_over_our']:.3f}"
        print(msg, file=sys.stderr, flush=True)
        rows.append(row)
        del w, fns
        torch.cuda.empty_cache()

    settings = {"repeats": args.repeats, "iters": args.iters, "warmup": args.warmup,
                "l2_rotation": bool(args.rotate), "graph": bool(args.graph), "check": bool(args.check),
                "module": args.module,
                "vs": args.vs, "data": args.data}
    return {"source": "python", "tool": "flash_mla.bench", "device": dev, "ceilings": ceilings,
            "settings": settings, "rows": rows}


# ----------------------------------------------------------------------------- output


def print_report(result):
    dev, ceil, st = result["device"], result["ceilings"], result["settings"]
    print("# flash_mla.bench\n")
    print(f"- GPU: {dev.get('name')}, {dev.get('sm_count')} SMs, compute capability {dev.get('compute_capability')}, "
          f"L2 {dev.get('l2_bytes', 0) / 2**20:.1f} MiB; torch {dev.get('torch')}, CUDA {dev.get('cuda_runtime')}")
    print(f"- Streaming read ceiling (torch column sum, {ceil['read_buffer_bytes'] / 2**30:.2f} GiB, median of "
          f"{len(ceil['read_samples_gbps'])}): {ceil['read_gbps']:.0f} GB/s")
    print(f"- bf16 GEMM ceiling (torch.matmul {ceil['gemm_n']}^3, median of {len(ceil['gemm_samples_tflops'])}): "
          f"{ceil['gemm_tflops']:.0f} TFLOPS")
    graph = ", captured once as a CUDA graph" if st.get("graph") else ""
    print(f"- Timing: median of {st['repeats']} repeats x {st['iters']} back-to-back calls (CUDA events{graph}), "
          f"{st['warmup']} warm-up calls, metadata computed once per row; L2 rotation "
          f"{'on' if st['l2_rotation'] else 'off'}")
    print(f"- Data: {st.get('data', 'uniform')} (q and cache values; flashmla = randn / 10 clamped to [-1, 1], "
          "FlashMLA's test recipe)")
    print("- FlashMLA % roof: quoted from shared/ANCHORS.md (H200, its own ceilings), "
          "= ANCHORS roofline us / FlashMLA us\n")
    print("| b | s_q | h_q | s_k | us | spread % | TFLOPS | GB/s | roofline us | % roof | FlashMLA % roof | vs FlashMLA |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        a = r.get("anchor")
        anchor = f"{a['flashmla_pct_roofline']:.1f}%" if a else "-"
        vs = f"{r['vs_flashmla']:.3f}" if a else "-"
        print(f"| {r['b']} | {r['s_q']} | {r['h_q']} | {r['s_k']} | {r['us_median']:.1f} | {r['spread_pct']:.1f} | "
              f"{r['tflops']:.0f} | {r['gbps']:.0f} | {r['roofline_us']:.1f} | {r['pct_roofline']:.1f}% | "
              f"{anchor} | {vs} |")
    vs_rows = [r for r in result["rows"] if r.get("vs")]
    if vs_rows:
        mod = vs_rows[0]["vs"]["module"]
        print(f"\n## vs {mod} (same process, same inputs, alternating per repeat)\n")
        print(f"| b | s_q | h_q | s_k | ours us | {mod} us | ratio theirs/ours | max abs out diff |")
        print("|---|---|---|---|---|---|---|---|")
        for r in vs_rows:
            v = r["vs"]
            print(f"| {r['b']} | {r['s_q']} | {r['h_q']} | {r['s_k']} | {r['us_median']:.1f} | {v['us_median']:.1f} | "
                  f"{v['ratio_their_over_our']:.3f} | {v['max_abs_out_diff']:.3g} |")
        ratios = [r["vs"]["ratio_their_over_our"] for r in vs_rows]
        geo = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        print(f"\ngeometric mean of {mod} us / ours us over {len(ratios)} rows: {geo:.3f} "
              f"(> 1: ours is faster)")


def compare_with_cpp(result, cpp_path):
    """Per-row python us / C++ us; returns the max deviation |ratio - 1| over the matched rows."""
    with open(cpp_path) as f:
        cpp = json.load(f)
    by_key = {config_key(r): r for r in cpp["rows"]}
    print(f"\n## Python vs C++ benchmark ({cpp_path})\n")
    pc, cc = result["ceilings"], cpp["ceilings"]
    print(f"- ceilings: read {pc['read_gbps']:.0f} (torch) vs {cc['read_gbps']:.0f} (own kernel) GB/s; "
          f"GEMM {pc['gemm_tflops']:.0f} (torch) vs {cc['gemm_tflops']:.0f} (cuBLAS) TFLOPS\n")
    print("| b | s_q | h_q | s_k | python us | C++ us | python / C++ |")
    print("|---|---|---|---|---|---|---|")
    worst, matched = 0.0, 0
    for r in result["rows"]:
        o = by_key.get(config_key(r))
        if o is None:
            print(f"| {r['b']} | {r['s_q']} | {r['h_q']} | {r['s_k']} | {r['us_median']:.1f} | - | not in C++ JSON |")
            continue
        ratio = r["us_median"] / o["us_median"]
        worst = max(worst, abs(ratio - 1.0))
        matched += 1
        flag = "" if abs(ratio - 1.0) <= AGREEMENT_TOLERANCE else " (over 5%)"
        print(f"| {r['b']} | {r['s_q']} | {r['h_q']} | {r['s_k']} | {r['us_median']:.1f} | {o['us_median']:.1f} | "
              f"{ratio:.3f}{flag} |")
    verdict = "within" if worst <= AGREEMENT_TOLERANCE else "NOT within"
    print(f"\nmax deviation over {matched} matched rows: {100 * worst:.1f}% ({verdict} the 5% acceptance bound)")
    return worst


# ----------------------------------------------------------------------------- command line


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m flash_mla.bench", description=__doc__.split("\n")[0])
    p.add_argument("--rows", choices=("grid", "small", "all"), default="all")
    for name, default in (("b", 128), ("s_q", 1), ("h_q", 128), ("h_kv", 1), ("s_k", 4096),
                          ("varlen", 1), ("causal", 1)):
        p.add_argument(f"--{name}", type=int, default=None, help=f"single configuration (default {default})")
    p.add_argument("--dtype", choices=("bf16", "fp16"), default=None,
                   help="element type; alone (no shape option) it applies to every row of --rows")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rotate", type=int, choices=(0, 1), default=1,
                   help="rotate q/cache copies so small rows do not run from L2")
    p.add_argument("--graph", type=int, choices=(0, 1), default=0,
                   help="1: capture each row's iters calls into a CUDA graph and time its replays (the GPU's "
                        "time without the host's cost per call); default 0, ANCHORS' recipe")
    p.add_argument("--data", choices=("flashmla", "uniform"), default="flashmla",
                   help="q and cache values: FlashMLA's test recipe (randn / 10, clamped; ANCHORS.md's rows) "
                        "or uniform in [-1, 1)")
    p.add_argument("--read-gib", type=float, default=4.0)
    p.add_argument("--device", type=int, default=0)
    p.add_argument("--check", action="store_true", help="verify a cut-down case per row before timing")
    p.add_argument("--module", default="flash_mla", help="module under test (default flash_mla)")
    p.add_argument("--vs", default=None, metavar="MODULE",
                   help="also time MODULE (FlashMLA's API) on the same inputs and print ratios")
    p.add_argument("--json", default=None, metavar="FILE")
    p.add_argument("--cpp-json", default=None, metavar="FILE", help="compare rows with flashmla_bench's JSON")
    p.add_argument("--load", default=None, metavar="FILE", help="re-read a JSON of this script instead of running")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.iters < 1 or args.warmup < 0:
        p.error("--repeats and --iters must be >= 1, --warmup >= 0")
    single = {k: getattr(args, k) for k in ("b", "s_q", "h_q", "h_kv", "s_k", "varlen", "causal")}
    if any(v is not None for v in single.values()):
        if args.dtype is not None:
            single["dtype"] = args.dtype
        c = make_config(**{k: v for k, v in single.items() if v is not None})
        if min(c["b"], c["s_q"], c["h_q"], c["h_kv"], c["s_k"]) < 1 or c["h_q"] % c["h_kv"]:
            p.error(f"invalid configuration: {describe(c)} (all sizes >= 1, h_q a multiple of h_kv)")
        args.configs = [c]
    else:
        args.configs = {"grid": grid_rows, "small": small_rows,
                        "all": lambda: grid_rows() + small_rows()}[args.rows]()
        if args.dtype is not None:
            args.configs = [dict(c, dtype=args.dtype) for c in args.configs]
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.load:
        with open(args.load) as f:
            result = json.load(f)
    else:
        result = run_rows(args, args.configs)
    print_report(result)
    if args.cpp_json:
        compare_with_cpp(result, args.cpp_json)
    if args.json and not args.load:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
