"""Fixed-length rows beside FlashMLA in one process: ours (the schedule from FLASH_MLA_WIDE_SCHEDULE)
and flashmla_peer alternating per repeat (flash_mla.bench's time_rows), every row once per pass; the
first pass warms the GPU to the power cap and is not reported (docs/perf-log.md, entry 124).

    PYTHONPATH=bench/peer python3 scripts/peer_rows.py "ROW;ROW;..." [passes]

A ROW is b,h_q,s_k (s_q = 1), b,s_q,h_q,s_k, or b,s_q,h_q,s_k,table_blocks: the last pads every
request's block table to that many entries (zeros past its pages), as serving engines size their
tables to the context limit (vLLM: max_model_len / 64) rather than to the step's longest request.
PEER_GRAPH=1 times CUDA-graph replays (the GPU's time without the host's, as engines run decode
steps). PEER_ROTATE_GIB (default 0: one copy) rotates q/cache copies so that calls do not read the
previous call's pages from L2 (at most 64 copies); under graphs each replay is max(20, copies) calls,
so that it walks every copy.
"""
import statistics, sys, os
from flash_mla import bench
import flash_mla, flashmla_peer
torch = bench._torch()


def parse_row(text):
    f = list(map(int, text.split(',')))
    if len(f) == 3:
        return f[0], 1, f[1], f[2], 0
    if len(f) in (4, 5):
        return f[0], f[1], f[2], f[3], f[4] if len(f) == 5 else 0
    raise SystemExit(f"peer_rows: row '{text}' is not b,h_q,s_k or b,s_q,h_q,s_k[,table_blocks]")


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
ws = []
for b, s_q, h, sk, blocks in rows:
    c = bench.make_config(b, s_q, h, 1, sk, False, True)
    w = bench.Workload(c, rotate)
    pad_table(w, blocks)
    ws.append(((b, s_q, h, sk, w.block_table.shape[1]), w, [w.caller(flash_mla), w.caller(flashmla_peer)]))
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
            print(f"pass {ps} {sched:9s} {mode} {b:4d},{s_q},{h:3d},{sk:6d} table {width:5d} copies {w.copies:2d} "
                  f"ours {o:8.1f} peer {p:8.1f} ratio {p / o:.3f}", flush=True)
if ratios:
    geo = statistics.geometric_mean(ratios)
    print(f"geomean peer/ours over {len(ratios)} timed rows: {geo:.3f}; ours faster on "
          f"{sum(r > 1 for r in ratios)}", flush=True)
