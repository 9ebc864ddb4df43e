"""One row, ours and flashmla_peer alternating for N seconds: a median of 6 x 20 calls each per block,
printed over time, to see how the two move from a cold GPU to the power cap (perf-log entry 124).

    PYTHONPATH=bench/peer python3 scripts/peer_drift.py 16 128 32768 0 25     (b h_q s_k varlen seconds)
"""
import statistics, sys, time
from flash_mla import bench
import flash_mla, flashmla_peer
torch = bench._torch()
b, h, sk, vl = map(int, sys.argv[1:5]); seconds = float(sys.argv[5])
c = bench.make_config(b, 1, h, 1, sk, vl, True)
w = bench.Workload(c, bench.rotation_bytes(bench.device_info(0)))
fns = [w.caller(flash_mla), w.caller(flashmla_peer)]
bench.time_rows(fns, 5, 1, 1)
t0 = time.time(); blocks = []
while time.time() - t0 < seconds:
    s = bench.time_rows(fns, 0, 6, 20)
    blocks.append((time.time() - t0, statistics.median(s[0]), statistics.median(s[1])))
for t, o, p in blocks:
    print(f"trend {b},1,{h},{sk} t={t:6.2f} s ours {o:8.1f} peer {p:8.1f} ratio {p / o:.3f}")
