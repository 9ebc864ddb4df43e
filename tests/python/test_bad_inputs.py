"""Every invalid argument raises a clear Python exception, and the next valid call still works."""

import pytest

torch = pytest.importorskip("torch")

import mla_helpers as H  # noqa: E402

_skip = H.device_skip_reason()
if _skip:
    pytest.skip(_skip, allow_module_level=True)

import flash_mla  # noqa: E402
from flash_mla import flash_mla_with_kvcache, get_mla_metadata  # noqa: E402

CUDA_ONLY = pytest.mark.skipif(not H.IS_CUDA, reason="device errors need the CUDA device")


@pytest.fixture(scope="module")
def base():
    """A valid problem (b=3, s_q=2, h_q=16, h_kv=2) and its output."""
    case = H.make_case(3, 2, 300, 16, 2, True, True, torch.bfloat16, seed=71)
    meta, splits = case.metadata()
    out, lse = flash_mla_with_kvcache(
        case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, splits, causal=True
    )
    ref_out, ref_lse = case.reference()
    H.assert_matches_reference(out, lse, ref_out, ref_lse, case.dtype)
    return {"case": case, "meta": meta, "splits": splits, "out": out.clone(), "lse": lse.clone()}


def _args(base):
    c = base["case"]
    return dict(
        q=c.q, k_cache=c.k_cache, block_table=c.block_table, cache_seqlens=c.cache_seqlens, head_dim_v=512,
        tile_scheduler_metadata=base["meta"], num_splits=base["splits"], causal=True,
    )


def _still_works(base):
    out, lse = flash_mla_with_kvcache(**_args(base))
    if H.IS_CUDA:
        torch.cuda.synchronize()  # an asynchronous fault would surface here
    assert H.bit_equal(out, base["out"]) and H.bit_equal(lse, base["lse"]), "valid call after an error differs"


def _misaligned(t):
    """Same shape and strides as t, data pointer 2 bytes off a 16-byte boundary."""
    flat = torch.empty(t.numel() + 8, dtype=t.dtype, device=t.device)
    view = flat[1 : 1 + t.numel()].view(t.shape)
    view.copy_(t)
    return view


def _odd_stride(t):
    """Last dimension contiguous, outer strides not a multiple of 8 elements."""
    big = torch.empty(t.shape[:-1] + (t.shape[-1] + 1,), dtype=t.dtype, device=t.device)
    view = big[..., : t.shape[-1]]
    view.copy_(t)
    return view


def _last_dim_strided(t):
    big = torch.empty(t.shape[:-1] + (2 * t.shape[-1],), dtype=t.dtype, device=t.device)
    view = big[..., ::2]
    view.copy_(t)
    return view


# name -> (mutation of the keyword arguments, expected exception, regex the message must match)
BAD_DECODE = {
    # dtypes
    "q_float32": (lambda a: a.update(q=a["q"].float()), TypeError, "q: expected dtype"),
    "q_int": (lambda a: a.update(q=a["q"].to(torch.int16)), TypeError, "q: expected dtype"),
    "k_cache_dtype_mismatch": (lambda a: a.update(k_cache=a["k_cache"].half()), TypeError, "k_cache"),
    "block_table_int64": (lambda a: a.update(block_table=a["block_table"].long()), TypeError, "block_table"),
    "cache_seqlens_int64": (lambda a: a.update(cache_seqlens=a["cache_seqlens"].long()), TypeError,
                            "cache_seqlens"),
    "metadata_int64": (lambda a: a.update(tile_scheduler_metadata=a["tile_scheduler_metadata"].long()),
                       TypeError, "tile_scheduler_metadata"),
    "num_splits_int64": (lambda a: a.update(num_splits=a["num_splits"].long()), TypeError, "num_splits"),
    # ranks
    "q_rank3": (lambda a: a.update(q=a["q"][:, 0]), ValueError, "q: expected a 4-D"),
    "k_cache_rank3": (lambda a: a.update(k_cache=a["k_cache"][:, :, 0]), ValueError, "k_cache: expected a 4-D"),
    "block_table_rank1": (lambda a: a.update(block_table=a["block_table"][0]), ValueError, "block_table"),
    "cache_seqlens_rank2": (lambda a: a.update(cache_seqlens=a["cache_seqlens"][None]), ValueError,
                            "cache_seqlens"),
    "metadata_rank1": (lambda a: a.update(tile_scheduler_metadata=a["tile_scheduler_metadata"][0]), ValueError,
                       "tile_scheduler_metadata"),
    # shapes
    "block_table_batch": (lambda a: a.update(block_table=a["block_table"][:2]), ValueError, "block_table"),
    "cache_seqlens_batch": (lambda a: a.update(cache_seqlens=a["cache_seqlens"][:2]), ValueError,
                            "cache_seqlens"),
    "num_splits_size": (lambda a: a.update(num_splits=a["num_splits"][:-1]), ValueError, "num_splits"),
    "metadata_fields": (lambda a: a.update(
        tile_scheduler_metadata=a["tile_scheduler_metadata"][:, :4].contiguous()), ValueError,
        "tile_scheduler_metadata"),
    "q_k_head_dim_mismatch": (lambda a: a.update(k_cache=a["k_cache"][..., :512]), ValueError, "k_cache"),
    # strides
    "q_last_dim_strided": (lambda a: a.update(q=_last_dim_strided(a["q"])), ValueError, "q"),
    "k_cache_last_dim_strided": (lambda a: a.update(k_cache=_last_dim_strided(a["k_cache"])), ValueError,
                                 "k_cache"),
    "block_table_last_dim_strided": (lambda a: a.update(block_table=_last_dim_strided(a["block_table"])),
                                     ValueError, "block_table"),
    "cache_seqlens_strided": (lambda a: a.update(cache_seqlens=_last_dim_strided(a["cache_seqlens"])),
                              ValueError, "cache_seqlens"),
    "metadata_noncontiguous": (lambda a: a.update(
        tile_scheduler_metadata=_last_dim_strided(a["tile_scheduler_metadata"])), ValueError,
        "tile_scheduler_metadata"),
    # values
    "head_dim_v_256": (lambda a: a.update(head_dim_v=256), ValueError, "head_dim_v"),
    "head_dim_v_576": (lambda a: a.update(head_dim_v=576), ValueError, "head_dim_v"),
    "softmax_scale_negative": (lambda a: a.update(softmax_scale=-0.1), ValueError, "softmax_scale"),
    "softmax_scale_nan": (lambda a: a.update(softmax_scale=float("nan")), ValueError, "softmax_scale"),
    "softmax_scale_zero": (lambda a: a.update(softmax_scale=0.0), ValueError, "softmax_scale"),
    # unbuilt features
    "fp8_kvcache": (lambda a: a.update(is_fp8_kvcache=True), NotImplementedError, "FP8"),
    "sparse_indices": (lambda a: a.update(indices=torch.zeros((3, 2, 64), dtype=torch.int32, device=H.DEVICE)),
                       NotImplementedError, "indices"),
    # plan arguments
    "num_splits_missing": (lambda a: a.update(num_splits=None), TypeError, "num_splits"),
    "metadata_missing": (lambda a: a.update(tile_scheduler_metadata=None, num_splits=None), TypeError,
                         "tile_scheduler_metadata"),
    "lazy_meta_with_num_splits": (lambda a: a.update(tile_scheduler_metadata=get_mla_metadata()[0]), TypeError,
                                  "num_splits"),
}

# Cases rejected by the library's own validation (flashmla::validate_decode_args -> ValueError).
BAD_DECODE_LIBRARY = {
    "heads_not_multiple": "num_heads",
    "page_size_32": "page_block_size",
    "head_dim_512": "head_dim",
    "q_outer_stride_not_multiple_of_8": "q_stride",
    "q_misaligned": "q",
    "k_cache_misaligned": "k_cache",
}

CUDA_DEVICE_CASES = {
    "q_cpu": "q",
    "k_cache_cpu": "k_cache",
    "block_table_cpu": "block_table",
    "cache_seqlens_cpu": "cache_seqlens",
    "metadata_cpu": "tile_scheduler_metadata",
    "num_splits_cpu": "num_splits",
}


@pytest.mark.parametrize("name", sorted(BAD_DECODE))
def test_bad_decode_argument(base, name):
    mutate, exc, pattern = BAD_DECODE[name]
    args = _args(base)
    mutate(args)
    with pytest.raises(exc, match=pattern) as info:
        flash_mla_with_kvcache(**args)
    assert str(info.value).strip(), "empty error message"
    _still_works(base)


@pytest.mark.parametrize("name", sorted(BAD_DECODE_LIBRARY))
def test_bad_decode_argument_library(base, name):
    c = base["case"]
    args = _args(base)
    if name == "heads_not_multiple":
        args["q"] = c.q[:, :, :3]  # h_q = 3, h_kv = 2
        args["tile_scheduler_metadata"], args["num_splits"] = get_mla_metadata(c.cache_seqlens, 2, 2)
    elif name == "page_size_32":
        k = c.k_cache
        args["k_cache"] = k.reshape(k.shape[0] * 2, 32, k.shape[2], k.shape[3])
    elif name == "head_dim_512":
        args["q"] = c.q[..., :512].contiguous()
        args["k_cache"] = c.k_cache[..., :512].contiguous()
    elif name == "q_outer_stride_not_multiple_of_8":
        if not H.IS_CUDA:
            pytest.skip("16-byte row alignment is a Backend::cuda requirement")
        args["q"] = _odd_stride(c.q)
    elif name == "q_misaligned":
        if not H.IS_CUDA:
            pytest.skip("alignment is a Backend::cuda requirement")
        args["q"] = _misaligned(c.q)
    elif name == "k_cache_misaligned":
        if not H.IS_CUDA:
            pytest.skip("alignment is a Backend::cuda requirement")
        args["k_cache"] = _misaligned(c.k_cache)
    with pytest.raises(ValueError, match=BAD_DECODE_LIBRARY[name]) as info:
        flash_mla_with_kvcache(**args)
    assert "expected" in str(info.value), f"message does not say what was expected: {info.value}"
    _still_works(base)


@CUDA_ONLY
@pytest.mark.parametrize("name", sorted(CUDA_DEVICE_CASES))
def test_bad_decode_device(base, name):
    arg = CUDA_DEVICE_CASES[name]
    args = _args(base)
    args[arg] = args[arg].cpu()
    with pytest.raises(ValueError, match=CUDA_DEVICE_CASES[name] + ": expected a CUDA tensor"):
        flash_mla_with_kvcache(**args)
    _still_works(base)


@CUDA_ONLY
def test_bad_decode_all_cpu(base):
    args = _args(base)
    for key in ("q", "k_cache", "block_table", "cache_seqlens", "tile_scheduler_metadata", "num_splits"):
        args[key] = args[key].cpu()
    with pytest.raises(ValueError, match="expected a CUDA tensor"):
        flash_mla_with_kvcache(**args)
    _still_works(base)


@CUDA_ONLY
@pytest.mark.skipif(H.IS_CUDA and torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_bad_decode_other_device(base):
    args = _args(base)
    args["k_cache"] = args["k_cache"].to("cuda:1")
    with pytest.raises(ValueError, match="k_cache: expected a tensor on"):
        flash_mla_with_kvcache(**args)
    _still_works(base)


BAD_METADATA = {
    "seqlens_int64": (lambda c: ((c.cache_seqlens.long(), c.ntok, c.h_kv), {}), TypeError, "cache_seqlens"),
    "seqlens_rank2": (lambda c: ((c.cache_seqlens[None], c.ntok, c.h_kv), {}), ValueError, "cache_seqlens"),
    "seqlens_strided": (lambda c: ((_last_dim_strided(c.cache_seqlens), c.ntok, c.h_kv), {}), ValueError,
                        "cache_seqlens"),
    "num_heads_k_zero": (lambda c: ((c.cache_seqlens, c.ntok, 0), {}), ValueError, "num_heads_k"),
    "ntok_zero": (lambda c: ((c.cache_seqlens, 0, c.h_kv), {}), ValueError, "num_q_tokens_per_head_k"),
    "ntok_too_large": (lambda c: ((c.cache_seqlens, 1 << 20, c.h_kv), {}), ValueError, "num_q_tokens_per_head_k"),
    "fp8": (lambda c: ((c.cache_seqlens, c.ntok, c.h_kv), {"is_fp8_kvcache": True}), NotImplementedError, "FP8"),
    "topk": (lambda c: ((c.cache_seqlens, c.ntok, c.h_kv), {"topk": 2048}), NotImplementedError, "topk"),
    "topk_lazy": (lambda c: ((), {"topk": 2048}), NotImplementedError, "topk"),
    "missing_num_heads_k": (lambda c: ((c.cache_seqlens, c.ntok), {}), TypeError, "num_heads_k"),
    "not_a_tensor": (lambda c: (([1, 2, 3], 16, 1), {}), TypeError, "cache_seqlens"),
}


@pytest.mark.parametrize("name", sorted(BAD_METADATA))
def test_bad_metadata_argument(base, name):
    make, exc, pattern = BAD_METADATA[name]
    args, kwargs = make(base["case"])
    with pytest.raises(exc, match=pattern):
        get_mla_metadata(*args, **kwargs)
    _still_works(base)


@CUDA_ONLY
def test_bad_metadata_cpu_seqlens(base):
    c = base["case"]
    with pytest.raises(ValueError, match="cache_seqlens: expected a CUDA tensor"):
        get_mla_metadata(c.cache_seqlens.cpu(), c.ntok, c.h_kv)
    _still_works(base)


def test_lazy_meta_bad_heads(base):
    c = base["case"]
    meta, _ = get_mla_metadata()
    with pytest.raises(ValueError, match="num_heads"):
        flash_mla_with_kvcache(c.q[:, :, :3], c.k_cache, c.block_table, c.cache_seqlens, 512, meta, None)
    assert not meta.is_filled, "a failed call must not fill the plan"
    _still_works(base)


def test_error_message_names_expected_and_actual(base):
    args = _args(base)
    args["head_dim_v"] = 256
    with pytest.raises(ValueError) as info:
        flash_mla_with_kvcache(**args)
    message = str(info.value)
    assert "head_dim_v" in message and "512" in message and "256" in message, message
    assert "Exception raised from" not in message, "C++ backtrace leaked into the message"
