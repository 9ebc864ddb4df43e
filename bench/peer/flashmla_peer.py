"""FlashMLA's dense decode, as vLLM's wheel ships it (vllm/_flashmla_C, built against the device
image's torch 2.11 and CUDA 13), behind FlashMLA's original Python API, for timing side by side with
flash_mla on the same GPU:  python -m flash_mla.bench --vs flashmla_peer

Benchmark-only. `scripts/prepare_peer.sh` copies the extension from PyPI into the artifact folder
(default <repo>/.peer, or $FLASHMLA_PEER_DIR); nothing of it is committed, and neither libflashmla
nor the flash_mla package depends on it (docs/performance.md, "FlashMLA on the same GPU").
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os

import torch

_DIR = os.environ.get("FLASHMLA_PEER_DIR",
                      os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".peer"))


def _load_extension():
    path = os.path.join(_DIR, "_flashmla_C.abi3.so")
    if not os.path.exists(path):
        raise ImportError(f"flashmla_peer: {path} is missing; run scripts/prepare_peer.sh")
    loader = importlib.machinery.ExtensionFileLoader("_flashmla_C", path)
    spec = importlib.util.spec_from_file_location("_flashmla_C", path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)  # registers torch.ops._flashmla_C
    return module


_EXTENSION = _load_extension()  # kept referenced for the life of the process
_ops = torch.ops._flashmla_C


def version():
    with open(os.path.join(_DIR, "VERSION")) as f:
        return f.read().strip()


class SchedulerMetadata:
    """This FlashMLA build plans inside its first decode call and hands the plan back for reuse, so
    get_mla_metadata only makes the holder; the benchmark's warm-up calls fill it before timing."""

    def __init__(self):
        self.tile_scheduler_metadata = None
        self.num_splits = None


def get_mla_metadata(cache_seqlens, num_q_tokens_per_head_k, num_heads_k, num_heads_q=None,
                     is_fp8_kvcache=False, topk=None):
    return SchedulerMetadata(), None


def flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, head_dim_v, tile_scheduler_metadata,
                           num_splits=None, softmax_scale=None, causal=False, is_fp8_kvcache=False, indices=None):
    if is_fp8_kvcache or indices is not None:
        raise NotImplementedError("flashmla_peer: only the dense bf16/fp16 decode is wired up")
    if softmax_scale is None:
        softmax_scale = q.shape[-1] ** (-0.5)
    meta = tile_scheduler_metadata
    out, lse, meta.tile_scheduler_metadata, meta.num_splits = _ops.dense_decode_fwd(
        q, k_cache, head_dim_v, cache_seqlens, block_table, softmax_scale, causal,
        meta.tile_scheduler_metadata, meta.num_splits, None)
    return out, lse
