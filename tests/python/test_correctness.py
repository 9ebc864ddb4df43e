"""flash_mla_with_kvcache against a float64 reference (SPEC section 1 tolerances)."""

import itertools
import math
import random

import pytest

torch = pytest.importorskip("torch")

import mla_helpers as H  # noqa: E402

_skip = H.device_skip_reason()
if _skip:
    pytest.skip(_skip, allow_module_level=True)

import flash_mla  # noqa: E402
from flash_mla import flash_mla_with_kvcache, get_mla_metadata  # noqa: E402

# ---------------------------------------------------------------- the thinned grid

BATCHES = [1, 2, 6, 64, 128]
SEQLENS_Q = [1, 2, 4]
SEQLENS_K = [1, 20, 64, 65, 140, 4096, 16384]
HEADS_Q = [1, 3, 16, 63, 64, 65, 126, 128]
HEADS_KV = [1, 2, 8]
DTYPES = ["bf16", "fp16"]
_DT = {"bf16": torch.bfloat16, "fp16": torch.float16}

# Cache tokens x kv heads per case: keeps the largest case near 2.4 GB of cache.
TOKEN_BUDGET = 1 << 21
RANDOM_CASES = 200
GRID_SEED = 20240611


def _fits(b, s_k, h_kv):
    return b * s_k * h_kv <= TOKEN_BUDGET


def _grid():
    """Every value of every axis appears (covering rows), plus a fixed pseudo-random sample."""
    cases = []
    # Covering set: row i takes value i of each axis (cyclically); h_kv falls back to 1 when it
    # does not divide h_q.
    width = max(len(BATCHES), len(SEQLENS_Q), len(SEQLENS_K), len(HEADS_Q), len(HEADS_KV))
    for i in range(width):
        h_q = HEADS_Q[i % len(HEADS_Q)]
        h_kv = HEADS_KV[i % len(HEADS_KV)]
        if h_q % h_kv:
            h_kv = 1
        case = (
            BATCHES[i % len(BATCHES)],
            SEQLENS_Q[i % len(SEQLENS_Q)],
            SEQLENS_K[i % len(SEQLENS_K)],
            h_q,
            h_kv,
            bool(i % 2),
            bool((i // 2) % 2),
            DTYPES[(i + i // 4) % 2],
        )
        cases.append(case)
    everything = [
        (b, s_q, s_k, h_q, h_kv, varlen, causal, dt)
        for b, s_q, s_k, h_q, h_kv, varlen, causal, dt in itertools.product(
            BATCHES, SEQLENS_Q, SEQLENS_K, HEADS_Q, HEADS_KV, [False, True], [False, True], DTYPES
        )
        if h_q % h_kv == 0 and _fits(b, s_k, h_kv)
    ]
    rng = random.Random(GRID_SEED)
    cases += rng.sample(everything, RANDOM_CASES)
    # Deduplicate, keep order.
    seen = set()
    unique = []
    for c in cases:
        if c not in seen and _fits(c[0], c[2], c[4]):
            seen.add(c)
            unique.append(c)
    return unique


GRID = _grid()


def _case_id(c):
    b, s_q, s_k, h_q, h_kv, varlen, causal, dt = c
    return (
        f"b{b}-sq{s_q}-sk{s_k}-hq{h_q}-hkv{h_kv}-{'varlen' if varlen else 'fixed'}-"
        f"{'causal' if causal else 'full'}-{dt}"
    )


def test_grid_covers_every_axis_value():
    axes = [BATCHES, SEQLENS_Q, SEQLENS_K, HEADS_Q, HEADS_KV, [False, True], [False, True], DTYPES]
    for k, values in enumerate(axes):
        present = {c[k] for c in GRID}
        assert present == set(values), f"axis {k}: missing {set(values) - present}"


@pytest.mark.parametrize("params", GRID, ids=[_case_id(c) for c in GRID])
def test_grid(params):
    b, s_q, s_k, h_q, h_kv, varlen, causal, dt = params
    index = GRID.index(params)
    case = H.make_case(
        b, s_q, s_k, h_q, h_kv, varlen, causal, _DT[dt], seed=1000 + 17 * index,
        q_noncontiguous=(index % 4 == 1),
        k_noncontiguous=(index % 5 == 2),
    )
    if index % 3 == 0:
        meta, splits = get_mla_metadata()  # lazy style
    else:
        meta, splits = case.metadata()
    out, lse = flash_mla_with_kvcache(
        case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, splits, causal=causal
    )
    ref_out, ref_lse = case.reference()
    H.assert_matches_reference(out, lse, ref_out, ref_lse, case.dtype, _case_id(params))


# ---------------------------------------------------------------- special inputs


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("s_q,causal", [(1, False), (2, True), (4, True), (4, False)])
def test_zero_length_mix(dt, s_q, causal):
    lens = [0, 130, 0, 1, 64, 0, 4096, 3, 0, 65]
    case = H.make_case(len(lens), s_q, 4096, 32, 1, True, causal, _DT[dt], seed=7, lens=lens)
    meta, splits = case.metadata()
    out, lse = flash_mla_with_kvcache(
        case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, splits, causal=causal
    )
    ref_out, ref_lse = case.reference()
    H.assert_matches_reference(out, lse, ref_out, ref_lse, case.dtype)
    for r, n in enumerate(lens):
        if n == 0:
            assert torch.isinf(lse[r]).all() and (lse[r] > 0).all()
            assert (out[r] == 0).all()


@pytest.mark.parametrize("b", [1, 5])
def test_all_lengths_zero(b):
    case = H.make_case(b, 2, 64, 16, 1, False, True, torch.bfloat16, seed=11, lens=[0] * b)
    meta, splits = case.metadata()
    out, lse = flash_mla_with_kvcache(
        case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, splits, causal=True
    )
    assert (out == 0).all()
    assert torch.isinf(lse).all() and (lse > 0).all()


def test_causal_rows_that_see_nothing():
    # With s_q = 4 and length n < 4, query token i sees keys j <= n - 4 + i: some rows see nothing.
    lens = [0, 1, 2, 3, 4, 5]
    case = H.make_case(len(lens), 4, 64, 16, 1, True, True, torch.bfloat16, seed=13, lens=lens)
    meta, splits = case.metadata()
    out, lse = flash_mla_with_kvcache(
        case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, splits, causal=True
    )
    ref_out, ref_lse = case.reference()
    H.assert_matches_reference(out, lse, ref_out, ref_lse, case.dtype)
    assert torch.isinf(lse[1, :, :3]).all() and torch.isfinite(lse[1, :, 3]).all()


@pytest.mark.parametrize("dt", DTYPES)
def test_noncontiguous_inputs(dt):
    case = H.make_case(
        6, 2, 300, 64, 2, True, True, _DT[dt], seed=17,
        q_noncontiguous=True, k_noncontiguous=True, table_noncontiguous=True,
    )
    assert not case.q.is_contiguous()
    assert not case.k_cache.is_contiguous()
    assert not case.block_table.is_contiguous()
    meta, splits = case.metadata()
    out, lse = flash_mla_with_kvcache(
        case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, splits, causal=True
    )
    ref_out, ref_lse = case.reference()
    H.assert_matches_reference(out, lse, ref_out, ref_lse, case.dtype)
    # Same numbers from contiguous copies of the same inputs.
    out2, lse2 = flash_mla_with_kvcache(
        case.q.contiguous(), case.k_cache.contiguous(), case.block_table.contiguous(), case.cache_seqlens,
        512, meta, splits, causal=True,
    )
    assert H.bit_equal(out, out2) and H.bit_equal(lse, lse2)


def test_softmax_scale():
    case = H.make_case(3, 1, 200, 16, 1, True, False, torch.bfloat16, seed=19)
    meta, splits = case.metadata()
    for scale in (0.01, 0.1):
        out, lse = flash_mla_with_kvcache(
            case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, splits,
            softmax_scale=scale,
        )
        ref_out, ref_lse = case.reference(softmax_scale=scale)
        H.assert_matches_reference(out, lse, ref_out, ref_lse, case.dtype, f"scale {scale}")
    # The default is q.shape[-1] ** -0.5.
    out_default, lse_default = flash_mla_with_kvcache(
        case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, splits
    )
    out_explicit, lse_explicit = flash_mla_with_kvcache(
        case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, splits,
        softmax_scale=576 ** -0.5,
    )
    assert H.bit_equal(out_default, out_explicit) and H.bit_equal(lse_default, lse_explicit)


# ---------------------------------------------------------------- determinism and metadata


@pytest.mark.parametrize("b,s_k,h_q,s_q", [(2, 16384, 128, 1), (64, 1000, 16, 2), (1, 65, 1, 4)])
def test_deterministic(b, s_k, h_q, s_q):
    case = H.make_case(b, s_q, s_k, h_q, 1, True, True, torch.bfloat16, seed=23)
    meta, splits = case.metadata()
    first = flash_mla_with_kvcache(
        case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, splits, causal=True
    )
    for _ in range(3):
        again = flash_mla_with_kvcache(
            case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, splits, causal=True
        )
        assert H.bit_equal(first[0], again[0]), "out differs between identical calls"
        assert H.bit_equal(first[1], again[1]), "lse differs between identical calls"
    meta2, splits2 = case.metadata()
    assert torch.equal(meta, meta2) and torch.equal(splits, splits2), "metadata is not deterministic"


def test_metadata_shapes():
    sms = H.sm_count()
    for b, s_q, h_q, h_kv in [(1, 1, 128, 1), (7, 2, 16, 1), (128, 4, 128, 8), (3, 1, 64, 2)]:
        lens = torch.randint(0, 5000, (b,), dtype=torch.int32, device=H.DEVICE)
        ntok = s_q * h_q // h_kv
        meta, splits = get_mla_metadata(lens, ntok, h_kv)
        assert meta.dtype == torch.int32 and splits.dtype == torch.int32
        assert meta.device == lens.device and splits.device == lens.device
        assert meta.dim() == 2 and meta.shape[1] == 8
        assert 1 <= meta.shape[0] <= sms
        assert meta.shape[0] == flash_mla._ops.num_sm_parts_for(sms, ntok, h_kv)
        assert tuple(splits.shape) == (b + 1,)
        assert meta.is_contiguous() and splits.is_contiguous()
    # num_heads_q is accepted (FlashMLA signature) and changes nothing.
    lens = torch.full((4,), 100, dtype=torch.int32, device=H.DEVICE)
    a = get_mla_metadata(lens, 16, 1)
    c = get_mla_metadata(lens, 16, 1, num_heads_q=16)
    assert torch.equal(a[0], c[0]) and torch.equal(a[1], c[1])


def test_metadata_reused_across_layers():
    b, s_q, s_k, h_q, h_kv = 6, 2, 1000, 64, 1
    base = H.make_case(b, s_q, s_k, h_q, h_kv, True, True, torch.bfloat16, seed=29)
    meta, splits = base.metadata()
    meta_before, splits_before = meta.clone(), splits.clone()
    lazy, none = get_mla_metadata()
    assert none is None
    for layer in range(4):
        # A new layer: new q and new cache contents behind the same table and lengths.
        q = torch.randn_like(base.q)
        k_cache = torch.empty_like(base.k_cache)
        H.fill_cache(k_cache, base.block_table.cpu(), base.lens, seed=100 + layer)
        case = H.Case(q, k_cache, base.block_table, base.cache_seqlens, base.lens, h_kv, True, base.dtype)
        out, lse = flash_mla_with_kvcache(
            q, k_cache, base.block_table, base.cache_seqlens, 512, meta, splits, causal=True
        )
        ref_out, ref_lse = case.reference()
        H.assert_matches_reference(out, lse, ref_out, ref_lse, case.dtype, f"layer {layer}")
        out_lazy, lse_lazy = flash_mla_with_kvcache(
            q, k_cache, base.block_table, base.cache_seqlens, 512, lazy, None, causal=True
        )
        assert H.bit_equal(out, out_lazy) and H.bit_equal(lse, lse_lazy), f"layer {layer}: styles differ"
    assert torch.equal(meta, meta_before) and torch.equal(splits, splits_before), "decode modified the plan"


def test_lazy_metadata_filled_once():
    case = H.make_case(5, 1, 700, 16, 1, True, False, torch.float16, seed=31)
    meta, splits = get_mla_metadata()
    assert isinstance(meta, flash_mla.FlashMLASchedMeta) and splits is None
    assert not meta.is_filled
    out1, lse1 = flash_mla_with_kvcache(
        case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, None
    )
    assert meta.is_filled
    plan = meta.tile_scheduler_metadata
    ref_meta, ref_splits = case.metadata()
    assert torch.equal(plan, ref_meta) and torch.equal(meta.num_splits, ref_splits)
    out2, lse2 = flash_mla_with_kvcache(
        case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, None
    )
    assert meta.tile_scheduler_metadata is plan, "the plan was recomputed instead of reused"
    assert H.bit_equal(out1, out2) and H.bit_equal(lse1, lse2)
    ref_out, ref_lse = case.reference()
    H.assert_matches_reference(out1, lse1, ref_out, ref_lse, case.dtype)


@pytest.mark.parametrize("change", ["batch", "heads_q", "seqlen_q", "heads_kv"])
def test_lazy_metadata_inconsistent_call(change):
    case = H.make_case(4, 2, 300, 16, 2, True, True, torch.bfloat16, seed=37)
    meta, _ = get_mla_metadata()
    out, lse = flash_mla_with_kvcache(
        case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, None, causal=True
    )
    if change == "batch":
        other = H.make_case(3, 2, 300, 16, 2, True, True, torch.bfloat16, seed=38)
    elif change == "heads_q":
        other = H.make_case(4, 2, 300, 32, 2, True, True, torch.bfloat16, seed=38)
    elif change == "seqlen_q":
        other = H.make_case(4, 1, 300, 16, 2, True, True, torch.bfloat16, seed=38)
    else:
        other = H.make_case(4, 2, 300, 16, 1, True, True, torch.bfloat16, seed=38)
    with pytest.raises(ValueError, match="FlashMLASchedMeta"):
        flash_mla_with_kvcache(
            other.q, other.k_cache, other.block_table, other.cache_seqlens, 512, meta, None, causal=True
        )
    # The plan is intact and still usable for the shape it was made for.
    again = flash_mla_with_kvcache(
        case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, None, causal=True
    )
    assert H.bit_equal(out, again[0]) and H.bit_equal(lse, again[1])


def test_batch_zero():
    q = torch.randn((0, 1, 16, 576), dtype=torch.bfloat16, device=H.DEVICE)
    k_cache = torch.randn((1, 64, 1, 576), dtype=torch.bfloat16, device=H.DEVICE)
    block_table = torch.zeros((0, 1), dtype=torch.int32, device=H.DEVICE)
    lens = torch.zeros((0,), dtype=torch.int32, device=H.DEVICE)
    meta, splits = get_mla_metadata(lens, 16, 1)
    assert tuple(splits.shape) == (1,)
    out, lse = flash_mla_with_kvcache(q, k_cache, block_table, lens, 512, meta, splits)
    assert tuple(out.shape) == (0, 1, 16, 512) and tuple(lse.shape) == (0, 16, 1)
