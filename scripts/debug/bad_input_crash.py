"""Reproduces one bad-input call under a debugger (scripts/gpu_suite.sh does not run this)."""
import sys
import torch
import flash_mla

torch.manual_seed(0)
b, s_q, h_q, h_kv = 3, 2, 16, 2
q = torch.randn(b, s_q, h_q, 576, dtype=torch.bfloat16, device="cuda")
cache = torch.randn(8, 64, h_kv, 576, dtype=torch.bfloat16, device="cuda")
table = torch.arange(6, dtype=torch.int32, device="cuda").view(3, 2)
lens = torch.tensor([100, 3, 64], dtype=torch.int32, device="cuda")
meta, splits = flash_mla.get_mla_metadata(lens, s_q * h_q // h_kv, h_kv)
out, lse = flash_mla.flash_mla_with_kvcache(q, cache, table, lens, 512, meta, splits, causal=True)
torch.cuda.synchronize()
print("valid call ok", flush=True)
for name, kwargs in [("head_dim_v", dict(head_dim_v=256)), ("rank", dict(q=q[:, 0]))]:
    args = dict(q=q, k_cache=cache, block_table=table, cache_seqlens=lens, head_dim_v=512,
                tile_scheduler_metadata=meta, num_splits=splits, causal=True)
    args.update(kwargs)
    try:
        flash_mla.flash_mla_with_kvcache(**args)
        print(name, "no exception", flush=True)
    except Exception as e:  # noqa: BLE001
        print(name, "raised", type(e).__name__, str(e)[:150], flush=True)
