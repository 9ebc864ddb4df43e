"""The public Python API (drop-in for DeepSeek FlashMLA's ``flash_mla`` package, dense decode).

Two metadata styles are supported:

* explicit (FlashMLA <= 2025-06 style)::

      tile_scheduler_metadata, num_splits = get_mla_metadata(cache_seqlens, s_q * h_q // h_kv, h_kv)
      for layer in layers:
          out, lse = flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, 512,
                                            tile_scheduler_metadata, num_splits, causal=True)

* lazy (newer FlashMLA style)::

      sched_meta, _ = get_mla_metadata()
      for layer in layers:
          out, lse = flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, 512,
                                            sched_meta, None, causal=True)

  The plan is computed on the GPU by the first call that receives ``sched_meta`` and reused by
  every later call; create a new one with ``get_mla_metadata()`` for each decoding step (whenever
  ``cache_seqlens`` changes outside a CUDA graph).
"""

from typing import Optional, Tuple

import torch

from . import _ops

__all__ = ["FlashMLASchedMeta", "get_mla_metadata", "flash_mla_with_kvcache"]

_fwd = _ops.fwd_kvcache_mla_op
_metadata = _ops.get_mla_metadata_op


class FlashMLASchedMeta:
    """Split-KV scheduling plan filled lazily by the first ``flash_mla_with_kvcache`` call.

    Attributes after the first call: ``tile_scheduler_metadata`` ([num_sm_parts, 8] int32),
    ``num_splits`` ([batch + 1] int32) and ``config`` = (batch, num_q_tokens_per_head_k,
    num_heads_k, device) it was planned for. Filling launches one GPU kernel; it never waits
    for the GPU.
    """

    __slots__ = ("tile_scheduler_metadata", "num_splits", "config")

    def __init__(self):
        self.tile_scheduler_metadata = None
        self.num_splits = None
        self.config = None

    @property
    def is_filled(self) -> bool:
        return self.config is not None

    def __repr__(self):
        if self.config is None:
            return "FlashMLASchedMeta(unfilled)"
        b, ntok, hkv, dev = self.config
        return (
            f"FlashMLASchedMeta(batch={b}, num_q_tokens_per_head_k={ntok}, num_heads_k={hkv}, "
            f"device={dev}, num_sm_parts={self.tile_scheduler_metadata.shape[0]})"
        )

    def _plan_for(self, q, k_cache, cache_seqlens):
        if not isinstance(q, torch.Tensor) or q.dim() != 4:
            raise ValueError(
                "q: expected a 4-D tensor [batch, seqlen_q, num_heads_q, head_dim], got "
                + (f"shape {list(q.shape)}" if isinstance(q, torch.Tensor) else type(q).__name__)
            )
        if not isinstance(k_cache, torch.Tensor) or k_cache.dim() != 4:
            raise ValueError(
                "k_cache: expected a 4-D tensor [num_blocks, page_block_size, num_heads_k, head_dim], got "
                + (f"shape {list(k_cache.shape)}" if isinstance(k_cache, torch.Tensor) else type(k_cache).__name__)
            )
        if not isinstance(cache_seqlens, torch.Tensor) or cache_seqlens.dim() != 1:
            raise ValueError(
                "cache_seqlens: expected a 1-D tensor [batch], got "
                + (
                    f"shape {list(cache_seqlens.shape)}"
                    if isinstance(cache_seqlens, torch.Tensor)
                    else type(cache_seqlens).__name__
                )
            )
        _, s_q, h_q, _ = q.shape
        h_kv = k_cache.shape[2]
        if h_kv < 1 or h_q % h_kv != 0:
            raise ValueError(
                f"num_heads_q: expected a multiple of num_heads_k (k_cache.size(2) = {h_kv}), got {h_q}"
            )
        config = (cache_seqlens.shape[0], s_q * h_q // h_kv, h_kv, cache_seqlens.device)
        if self.config is None:
            self.tile_scheduler_metadata, self.num_splits = _metadata(cache_seqlens, config[1], config[2])
            self.config = config
        elif config != self.config:
            b, ntok, hkv, dev = self.config
            raise ValueError(
                "tile_scheduler_metadata: this FlashMLASchedMeta was planned for "
                f"batch={b}, num_q_tokens_per_head_k={ntok} (seqlen_q * num_heads_q // num_heads_k), "
                f"num_heads_k={hkv}, device={dev}; this call has batch={config[0]}, "
                f"num_q_tokens_per_head_k={config[1]}, num_heads_k={config[2]}, device={config[3]}. "
                "Use a new get_mla_metadata() for a differently shaped call."
            )
        return self.tile_scheduler_metadata, self.num_splits


def get_mla_metadata(
    cache_seqlens: Optional[torch.Tensor] = None,
    num_q_tokens_per_head_k: Optional[int] = None,
    num_heads_k: Optional[int] = None,
    num_heads_q: Optional[int] = None,
    is_fp8_kvcache: bool = False,
    topk: Optional[int] = None,
):
    """Split-KV scheduling metadata for one decoding step.

    Args:
        cache_seqlens: [batch] int32 CUDA tensor, tokens in the KV cache of each request.
        num_q_tokens_per_head_k: seqlen_q * num_heads_q // num_heads_k.
        num_heads_k: number of KV heads.
        num_heads_q: accepted for API compatibility; unused by dense decode.
        is_fp8_kvcache, topk: FP8 KV cache / sparse top-k decode, not implemented yet.

    Returns:
        (tile_scheduler_metadata [num_sm_parts, 8] int32, num_splits [batch + 1] int32), both on
        cache_seqlens' device, computed by a GPU kernel without host synchronisation. With no
        arguments: (FlashMLASchedMeta(), None), filled by the first flash_mla_with_kvcache call.
    """
    if is_fp8_kvcache:
        raise NotImplementedError("get_mla_metadata: is_fp8_kvcache=True (FP8 KV cache) is not implemented yet")
    if topk is not None:
        raise NotImplementedError(
            "get_mla_metadata: topk (sparse attention, DeepSeek-V3.2 top-k indices) is not implemented yet"
        )
    if cache_seqlens is None and num_q_tokens_per_head_k is None and num_heads_k is None:
        return FlashMLASchedMeta(), None
    if cache_seqlens is None or num_q_tokens_per_head_k is None or num_heads_k is None:
        missing = [
            name
            for name, value in (
                ("cache_seqlens", cache_seqlens),
                ("num_q_tokens_per_head_k", num_q_tokens_per_head_k),
                ("num_heads_k", num_heads_k),
            )
            if value is None
        ]
        raise TypeError(
            "get_mla_metadata: expected either no arguments (lazy FlashMLASchedMeta) or cache_seqlens, "
            f"num_q_tokens_per_head_k and num_heads_k; missing {', '.join(missing)}"
        )
    if not isinstance(cache_seqlens, torch.Tensor):
        raise TypeError(f"cache_seqlens: expected a torch.Tensor, got {type(cache_seqlens).__name__}")
    return _metadata(cache_seqlens, num_q_tokens_per_head_k, num_heads_k)


def flash_mla_with_kvcache(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    block_table: torch.Tensor,
    cache_seqlens: torch.Tensor,
    head_dim_v: int,
    tile_scheduler_metadata,
    num_splits: Optional[torch.Tensor] = None,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    is_fp8_kvcache: bool = False,
    indices: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """MLA decoding attention over a paged KV cache.

    Args:
        q: [batch, seqlen_q, num_heads_q, 576] bf16/fp16, last dimension contiguous.
        k_cache: [num_blocks, 64, num_heads_k, 576], q's dtype, last dimension contiguous.
        block_table: [batch, max_blocks_per_seq] int32.
        cache_seqlens: [batch] int32.
        head_dim_v: 512.
        tile_scheduler_metadata, num_splits: from get_mla_metadata(...), or (FlashMLASchedMeta, None).
        softmax_scale: default q.shape[-1] ** -0.5.
        causal: bottom-right aligned causal mask over the seqlen_q query tokens.
        is_fp8_kvcache, indices: FP8 KV cache / sparse attention, not implemented yet.

    Returns:
        out [batch, seqlen_q, num_heads_q, 512] in q's dtype, lse [batch, num_heads_q, seqlen_q] float32
        (natural log; +inf with a zero output row for a query that sees no key).
    """
    if is_fp8_kvcache:
        raise NotImplementedError(
            "flash_mla_with_kvcache: is_fp8_kvcache=True (FP8 KV cache) is not implemented yet"
        )
    if indices is not None:
        raise NotImplementedError(
            "flash_mla_with_kvcache: indices (sparse attention, DeepSeek-V3.2 top-k) is not implemented yet"
        )
    if softmax_scale is None:
        try:
            softmax_scale = q.shape[-1] ** -0.5
        except (AttributeError, IndexError, ZeroDivisionError):
            raise TypeError(
                "q: expected a tensor of shape [batch, seqlen_q, num_heads_q, head_dim], got "
                + (f"shape {list(q.shape)}" if isinstance(q, torch.Tensor) else type(q).__name__)
            ) from None
    if isinstance(tile_scheduler_metadata, FlashMLASchedMeta):
        if num_splits is not None:
            raise TypeError(
                "num_splits: expected None when tile_scheduler_metadata is a FlashMLASchedMeta "
                "(the plan holds its own num_splits)"
            )
        tile_scheduler_metadata, num_splits = tile_scheduler_metadata._plan_for(q, k_cache, cache_seqlens)
    elif tile_scheduler_metadata is None:
        raise TypeError(
            "tile_scheduler_metadata: expected the [num_sm_parts, 8] int32 tensor from "
            "get_mla_metadata(cache_seqlens, ...) or the FlashMLASchedMeta from get_mla_metadata(), got None"
        )
    elif num_splits is None:
        raise TypeError(
            "num_splits: expected the [batch + 1] int32 tensor returned by get_mla_metadata(...) "
            "together with tile_scheduler_metadata, got None"
        )
    return _fwd(
        q,
        k_cache,
        block_table,
        cache_seqlens,
        head_dim_v,
        tile_scheduler_metadata,
        num_splits,
        softmax_scale,
        causal,
    )
