"""Fixed-length rows beside FlashMLA in one process: ours (the schedule from FLASH_MLA_WIDE_SCHEDULE)
and flashmla_peer alternating per repeat (flash_mla.bench's time_rows), every row once per pass; the
first pass warms the GPU to the power cap and is not reported (docs/perf-log.md, entry 124).

    PYTHONPATH=bench/peer python3 scripts/peer_rows.py "ROW;ROW;..." [passes]

A ROW is b,h_q,s_k (s_q = 1), b,s_q,h_q,s_k, or b,s_q,h_q,s_k,table_blocks: the last pads every
request's block table to that many entries (zeros past its pages), as serving engines size their
tables to the context limit (vLLM: max_model_len / 64) rather than to the step's longest request.
s_k is one length for every request, LO:HI for lengths drawn uniformly from [LO, HI] (seeded), or
S+L for one request of L keys (the first) among b - 1 of S.
PEER_GRAPH=1 times CUDA-graph replays (the GPU's time without the host's, as engines run decode
steps). PEER_ROTATE_GIB (default 0: one copy) rotates q/cache copies so that calls do not read the
previous call's pages from L2 (at most 64 copies); under graphs each replay is max(20, copies) calls,
so that it walks every copy.

Before timing, each row's first call of both is compared (max |out| and |lse| differences over the
positions where both are finite; FlashMLA's bf16 P keeps it ~1e-3 from ours, perf-log entry 90), and
a row that FlashMLA cannot run (it raises) is reported and left out rather than ending the run.
"""
import os, random, statistics, sys
from flash_mla import bench
import flash_mla, flashmla_peer
torch = bench._torch()


def parse_lengths(b, text):
    """The b lengths that a row's s_k field names (see the module docstring)."""
    if ':' in text:
        lo, hi = map(int, text.split(':'))
        rng = random.Random(0)
        return [rng.randint(lo, hi) for _ in range(b)]
    if '+' in text:
        short, long_one = map(int, text.split('+'))
        return [long_one] + [short] * (b - 1)
    return [int(text)] * b


def parse_row(text):
    f = text.split(',')
    if len(f) == 3:
        f = [f[0], '1', f[1], f[2]]
    if len(f) not in (4, 5):
        raise SystemExit(f"peer_rows: row '{text}' is not b,h_q,s_k or b,s_q,h_q,s_k[,table_blocks]")
    b, s_q, h = map(int, f[:3])
    return b, s_q, h, f[3], parse_lengths(b, f[3]), int(f[4]) if len(f) == 5 else 0


def pad_table(w, blocks):
    t = w.block_table
    if blocks <= t.shape[1]:
        return
    wide = torch.zeros(t.shape[0], blocks, dtype=t.dtype, device=t.device)
    wide[:, :t.shape[1]] = t
    w.block_table = wide


rows = [parse_row(r) for r in sys.argv[1].split(';') if r.strip()]
passes = int(sys.argv[2]) if len(sys.argv) > 2 else 3
graph = os.environ.get("PEER_GRAPH", "0") == "1"
rotate = int(float(os.environ.get("PEER_ROTATE_GIB", "0")) * (1 << 30))


def max_diff(a, b):
    if a.shape != b.shape:
        return float("nan"), False
    both = torch.isfinite(a) & torch.isfinite(b)
    same_inf = bool((torch.isfinite(a) == torch.isfinite(b)).all())
    d = (a.float() - b.float()).abs()[both]
    return (float(d.max()) if d.numel() else 0.0), same_inf


ws = []
for b, s_q, h, sk, lengths, blocks in rows:
    c = bench.make_config(b, s_q, h, 1, max(lengths), False, True)
    w = bench.Workload(c, rotate, lengths=lengths)
    pad_table(w, blocks)
    key = (b, s_q, h, sk, w.block_table.shape[1])
    try:
        fns = [w.caller(flash_mla), w.caller(flashmla_peer)]
        (o_ours, l_ours), (o_peer, l_peer) = fns[0](0), fns[1](0)
        torch.cuda.synchronize()
    except Exception as e:  # a shape FlashMLA does not take
        print(f"row {b},{s_q},{h},{sk}: left out, {type(e).__name__}: {str(e).splitlines()[0][:160]}", flush=True)
        torch.cuda.synchronize()
        continue
    d_out, inf_out = max_diff(o_ours, o_peer)
    d_lse, inf_lse = max_diff(l_ours, l_peer)
    print(f"row {b},{s_q},{h},{sk}: max |out diff| {d_out:.2e}, max |lse diff| {d_lse:.2e}, "
          f"non-finite positions {'equal' if inf_out and inf_lse else 'DIFFER'}", flush=True)
    ws.append((key, w, fns))
sched = os.environ.get("FLASH_MLA_WIDE_SCHEDULE", "automatic")
mode = "graph" if graph else "calls"
ratios = []
for ps in range(passes):
    for key, w, fns in ws:
        iters = max(20, w.copies) if graph else 20
        s = bench.time_rows(fns, 5, 9, iters, graph)
        o, p = statistics.median(s[0]), statistics.median(s[1])
        if ps:
            b, s_q, h, sk, width = key
            ratios.append(p / o)
            print(f"pass {ps} {sched:9s} {mode} {b:4d},{s_q},{h:3d},{sk:>6s} table {width:5d} copies {w.copies:2d} "
                  f"ours {o:8.1f} peer {p:8.1f} ratio {p / o:.3f}", flush=True)
if ratios:
    geo = statistics.geometric_mean(ratios)
    print(f"geomean peer/ours over {len(ratios)} timed rows: {geo:.3f}; ours faster on "
          f"{sum(r > 1 for r in ratios)}", flush=True)
