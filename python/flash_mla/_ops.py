"""Loads the compiled binding and registers the fake (meta) implementations of its ops.

Importing this module registers ``torch.ops.flash_mla.get_mla_metadata`` and
``torch.ops.flash_mla.fwd_kvcache_mla``. Nothing here initialises CUDA.
"""

import torch

from . import _C  # noqa: F401  (loading the library registers the ops with the dispatcher)

METADATA_FIELDS = _C.METADATA_FIELDS
HEAD_DIM_V = _C.HEAD_DIM_V
num_sm_parts_for = _C.num_sm_parts_for
workspace_size = _C.workspace_size

# Overloads resolved once: calling an OpOverload skips the overload lookup of the packet.
get_mla_metadata_op = torch.ops.flash_mla.get_mla_metadata.default
fwd_kvcache_mla_op = torch.ops.flash_mla.fwd_kvcache_mla.default

_sm_counts = {}


def device_sm_count(device):
    """Multiprocessor count of a CUDA device (cached; the first call per device initialises CUDA)."""
    index = device.index if isinstance(device, torch.device) else device
    if index is None:
        index = torch.cuda.current_device()
    count = _sm_counts.get(index)
    if count is None:
        count = torch.cuda.get_device_properties(index).multi_processor_count
        _sm_counts[index] = count
    return count


def _fake_rank(t, name, rank, layout):
    if t.dim() != rank:
        raise ValueError(f"{name}: expected a {rank}-D tensor {layout}, got shape {list(t.shape)}")


@torch.library.register_fake("flash_mla::get_mla_metadata")
def _get_mla_metadata_fake(cache_seqlens, num_q_tokens_per_head_k, num_heads_k):
    _fake_rank(cache_seqlens, "cache_seqlens", 1, "[batch]")
    parts = num_sm_parts_for(
        device_sm_count(cache_seqlens.device), int(num_q_tokens_per_head_k), int(num_heads_k)
    )
    batch = cache_seqlens.shape[0]
    metadata = cache_seqlens.new_empty((parts, METADATA_FIELDS), dtype=torch.int32)
    num_splits = cache_seqlens.new_empty((batch + 1,), dtype=torch.int32)
    return metadata, num_splits


@torch.library.register_fake("flash_mla::fwd_kvcache_mla")
def _fwd_kvcache_mla_fake(
    q,
    k_cache,
    block_table,
    cache_seqlens,
    head_dim_v,
    tile_scheduler_metadata,
    num_splits,
    softmax_scale,
    causal,
):
    _fake_rank(q, "q", 4, "[batch, seqlen_q, num_heads_q, head_dim]")
    if head_dim_v != HEAD_DIM_V:
        raise ValueError(f"head_dim_v: expected {HEAD_DIM_V}, got {head_dim_v}")
    batch, seqlen_q, num_heads_q = q.shape[0], q.shape[1], q.shape[2]
    out = q.new_empty((batch, seqlen_q, num_heads_q, head_dim_v))
    lse = q.new_empty((batch, num_heads_q, seqlen_q), dtype=torch.float32)
    return out, lse
