"""Fixed-length rows beside FlashMLA in one process: ours (the schedule from FLASH_MLA_WIDE_SCHEDULE)
and flashmla_peer alternating per repeat (flash_mla.bench's time_rows), every row once per pass; the
first pass warms the GPU to the power cap and is not reported (docs/perf-log.md, entry 124).

    PYTHONPATH=bench/peer python3 scripts/peer_rows.py "64,128,8192;128,128,4096" [passes]   (b,h_q,s_k)
"""
import statistics, sys, os
from flash_mla import bench
import flash_mla, flashmla_peer
torch = bench._torch()
rows = [tuple(map(int, r.split(','))) for r in sys.argv[1].split(';')]
passes = int(sys.argv[2]) if len(sys.argv) > 2 else 3
ws = []
for b, h, sk in rows:
    c = bench.make_config(b, 1, h, 1, sk, False, True)
    w = bench.Workload(c, 0)
    ws.append((b, h, sk, w, [w.caller(flash_mla), w.caller(flashmla_peer)]))
sched = os.environ.get("FLASH_MLA_WIDE_SCHEDULE", "automatic")
for ps in range(passes):
    for b, h, sk, w, fns in ws:
        s = bench.time_rows(fns, 5, 9, 20)
        o, p = statistics.median(s[0]), statistics.median(s[1])
        if ps:
            print(f"pass {ps} {sched:9s} {b:4d},1,{h},{sk:6d} ours {o:8.1f} peer {p:8.1f} ratio {p / o:.3f}", flush=True)
