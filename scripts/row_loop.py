"""Times one benchmark row of a module with FlashMLA's Python API (flash_mla, or flashmla_peer) for
scripts/power_probe.sh and scripts/profile_ncu.sh: the same inputs as `python -m flash_mla.bench`, no
ceilings, one table line. bench/peer is on the import path, so flashmla_peer needs no PYTHONPATH.

    python3 scripts/row_loop.py --module flashmla_peer --b 128 --s_q 1 --h_q 128 --s_k 8192 --repeats 20 --iters 200
"""

import argparse
import importlib
import os
import sys

from flash_mla import bench

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "peer"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--module", default="flash_mla")
    for name in ("b", "s_q", "h_q", "s_k", "varlen", "causal"):
        p.add_argument(f"--{name}", type=int, required=True)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--warmup", type=int, default=5)
    a = p.parse_args()
    torch = bench._torch()
    mod = importlib.import_module(a.module)
    c = bench.make_config(a.b, a.s_q, a.h_q, 1, a.s_k, a.varlen, a.causal)
    w = bench.Workload(c, bench.rotation_bytes(bench.device_info(torch.cuda.current_device())))
    samples = bench.time_rows([w.caller(mod)], a.warmup, a.repeats, a.iters)[0]
    s = bench.summarize(samples)
    print(f"| {a.b} | {a.s_q} | {a.h_q} | {a.s_k} | {s['us_median']:.1f} | {s['spread_pct']:.1f} | {a.module} |")
    del w
    torch.cuda.synchronize()
    return 0


if __name__ == "__main__":
    sys.exit(main())
