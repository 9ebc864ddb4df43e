"""CUDA graph capture/replay, torch.compile and torch.library.opcheck of the custom ops."""

import math

import pytest

torch = pytest.importorskip("torch")

import mla_helpers as H  # noqa: E402

_skip = H.device_skip_reason()
if _skip:
    pytest.skip(_skip, allow_module_level=True)
if not H.IS_CUDA:
    pytest.skip("CUDA graphs and torch.compile tests need the CUDA device", allow_module_level=True)

import flash_mla  # noqa: E402
from flash_mla import flash_mla_with_kvcache, get_mla_metadata  # noqa: E402


def _warm_up(fn, iters=2):
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(iters):
            fn()
    torch.cuda.current_stream().wait_stream(side)


@pytest.mark.parametrize("style", ["explicit", "lazy"])
@pytest.mark.parametrize("dt", [torch.bfloat16, torch.float16])
def test_cuda_graph_replay_with_new_contents_and_lengths(style, dt):
    b, s_q, h_q, h_kv, max_len = 8, 2, 64, 1, 3000
    causal = True
    # Static buffers. The block table covers max_len for every request, so any lengths up to
    # max_len can be replayed: the metadata kernel is captured too and re-plans on each replay.
    gen = torch.Generator().manual_seed(41)
    full_lens = [max_len] * b
    table, num_blocks = H.make_block_table(full_lens, math.ceil(max_len / H.PAGE) + 1, gen)
    block_table = table.to("cuda")
    k_cache = torch.empty((num_blocks, H.PAGE, h_kv, H.D_QK), dtype=dt, device="cuda")
    q = torch.empty((b, s_q, h_q, H.D_QK), dtype=dt, device="cuda")
    cache_seqlens = torch.empty((b,), dtype=torch.int32, device="cuda")

    def load(lens, seed):
        H.fill_cache(k_cache, table, lens, seed)
        q.copy_(torch.randn(q.shape, generator=torch.Generator(device="cuda").manual_seed(seed + 1),
                            device="cuda", dtype=dt))
        cache_seqlens.copy_(torch.tensor(lens, dtype=torch.int32))

    def step():
        if style == "explicit":
            meta, splits = get_mla_metadata(cache_seqlens, s_q * h_q // h_kv, h_kv)
        else:
            meta, splits = get_mla_metadata()
        return flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, 512, meta, splits, causal=causal)

    load([max_len // 2] * b, seed=1)
    _warm_up(step)
    torch.cuda.synchronize()

    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out, lse = step()
    torch.cuda.synchronize()

    rng = torch.Generator().manual_seed(43)
    replays = [
        [max_len] * b,
        torch.randint(0, max_len + 1, (b,), generator=rng).tolist(),
        [0, 1, 64, 65, max_len, 2, 0, 1000],
        [1] * b,
    ]
    for i, lens in enumerate(replays):
        load(lens, seed=100 + 10 * i)
        graph.replay()
        ref_out, ref_lse = H.reference_decode(q, k_cache, block_table, lens, H.D_QK ** -0.5, causal)
        H.assert_matches_reference(out, lse, ref_out, ref_lse, dt, f"replay {i}, lengths {lens}")
        # The graph's result equals an eager call on the same inputs, bit for bit.
        eager_out, eager_lse = step()
        assert H.bit_equal(out, eager_out) and H.bit_equal(lse, eager_lse), f"replay {i}: graph != eager"


def test_cuda_graph_decode_only_many_layers():
    """Metadata computed once outside the graph, several 'layers' of decode captured."""
    case = H.make_case(4, 1, 900, 128, 1, True, False, torch.bfloat16, seed=47)
    meta, splits = case.metadata()
    layers = [torch.randn_like(case.q) for _ in range(3)]

    def run():
        return [
            flash_mla_with_kvcache(q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, splits)
            for q in layers
        ]

    _warm_up(run)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        results = run()
    for q in layers:
        q.copy_(torch.randn_like(q))
    graph.replay()
    for i, (q, (out, lse)) in enumerate(zip(layers, results)):
        ref_out, ref_lse = H.reference_decode(
            q, case.k_cache, case.block_table, case.lens, H.D_QK ** -0.5, False
        )
        H.assert_matches_reference(out, lse, ref_out, ref_lse, case.dtype, f"layer {i}")


def test_no_host_sync():
    case = H.make_case(4, 2, 500, 16, 1, True, True, torch.bfloat16, seed=53)
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        meta, splits = case.metadata()
        flash_mla_with_kvcache(
            case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, splits, causal=True
        )
        lazy, _ = get_mla_metadata()
        flash_mla_with_kvcache(
            case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, lazy, None, causal=True
        )
    finally:
        torch.cuda.set_sync_debug_mode(previous)


@pytest.mark.parametrize("with_metadata_inside", [False, True])
def test_torch_compile_fullgraph(with_metadata_inside):
    torch._dynamo.reset()
    case = H.make_case(6, 2, 800, 32, 2, True, True, torch.bfloat16, seed=59)
    meta, splits = case.metadata()

    if with_metadata_inside:
        def fn(q, k_cache, block_table, cache_seqlens):
            s_q, h_q, h_kv = q.shape[1], q.shape[2], k_cache.shape[2]
            m, n = get_mla_metadata(cache_seqlens, s_q * h_q // h_kv, h_kv)
            out, lse = flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, 512, m, n, causal=True)
            return out * 2, lse
    else:
        def fn(q, k_cache, block_table, cache_seqlens):
            out, lse = flash_mla_with_kvcache(
                q, k_cache, block_table, cache_seqlens, 512, meta, splits, causal=True
            )
            return out * 2, lse

    compiled = torch.compile(fn, fullgraph=True)
    eager_out, eager_lse = fn(case.q, case.k_cache, case.block_table, case.cache_seqlens)
    out, lse = compiled(case.q, case.k_cache, case.block_table, case.cache_seqlens)
    assert H.bit_equal(out, eager_out) and H.bit_equal(lse, eager_lse), "compiled result differs from eager"
    ref_out, ref_lse = case.reference()
    H.assert_matches_reference(out / 2, lse, ref_out, ref_lse, case.dtype)
    # A second call with new values reuses the compiled graph.
    q2 = torch.randn_like(case.q)
    out2, lse2 = compiled(q2, case.k_cache, case.block_table, case.cache_seqlens)
    e2 = fn(q2, case.k_cache, case.block_table, case.cache_seqlens)
    assert H.bit_equal(out2, e2[0]) and H.bit_equal(lse2, e2[1])


def test_torch_compile_lazy_metadata():
    torch._dynamo.reset()
    case = H.make_case(5, 1, 600, 64, 1, True, False, torch.float16, seed=63)
    lazy, _ = get_mla_metadata()

    def fn(q):
        return flash_mla_with_kvcache(q, case.k_cache, case.block_table, case.cache_seqlens, 512, lazy, None)

    compiled = torch.compile(fn, fullgraph=True)
    out, lse = compiled(case.q)
    assert lazy.is_filled
    ref_meta, ref_splits = case.metadata()
    assert torch.equal(lazy.tile_scheduler_metadata, ref_meta) and torch.equal(lazy.num_splits, ref_splits)
    eager_out, eager_lse = fn(case.q)
    assert H.bit_equal(out, eager_out) and H.bit_equal(lse, eager_lse)
    out2, lse2 = compiled(case.q)
    assert H.bit_equal(out2, eager_out) and H.bit_equal(lse2, eager_lse)


def test_torch_compile_dynamic_batch():
    torch._dynamo.reset()

    def fn(q, k_cache, block_table, cache_seqlens):
        s_q, h_q, h_kv = q.shape[1], q.shape[2], k_cache.shape[2]
        m, n = get_mla_metadata(cache_seqlens, s_q * h_q // h_kv, h_kv)
        return flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, 512, m, n, causal=True)

    compiled = torch.compile(fn, fullgraph=True, dynamic=True)
    for b in (3, 5, 9):
        case = H.make_case(b, 2, 300, 32, 2, True, True, torch.bfloat16, seed=b)
        got = compiled(case.q, case.k_cache, case.block_table, case.cache_seqlens)
        want = fn(case.q, case.k_cache, case.block_table, case.cache_seqlens)
        assert H.bit_equal(got[0], want[0]) and H.bit_equal(got[1], want[1]), f"batch {b}"


def test_fake_shapes_match_real():
    from torch._subclasses.fake_tensor import FakeTensorMode

    case = H.make_case(3, 2, 200, 16, 1, True, True, torch.float16, seed=61)
    meta, splits = case.metadata()
    real_out, real_lse = torch.ops.flash_mla.fwd_kvcache_mla(
        case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, splits, 0.05, True
    )
    with FakeTensorMode() as mode:
        fq = mode.from_tensor(case.q)
        fk = mode.from_tensor(case.k_cache)
        fb = mode.from_tensor(case.block_table)
        fs = mode.from_tensor(case.cache_seqlens)
        fm, fn_ = torch.ops.flash_mla.get_mla_metadata(fs, case.ntok, case.h_kv)
        fo, fl = torch.ops.flash_mla.fwd_kvcache_mla(fq, fk, fb, fs, 512, fm, fn_, 0.05, True)
    assert fm.shape == meta.shape and fn_.shape == splits.shape
    assert fm.dtype == meta.dtype and fn_.dtype == splits.dtype
    assert fo.shape == real_out.shape and fo.stride() == real_out.stride() and fo.dtype == real_out.dtype
    assert fl.shape == real_lse.shape and fl.stride() == real_lse.stride() and fl.dtype == real_lse.dtype


def test_opcheck():
    case = H.make_case(3, 2, 200, 16, 1, True, True, torch.bfloat16, seed=67)
    meta, splits = case.metadata()
    torch.library.opcheck(torch.ops.flash_mla.get_mla_metadata.default, (case.cache_seqlens, case.ntok, 1))
    torch.library.opcheck(
        torch.ops.flash_mla.fwd_kvcache_mla.default,
        (case.q, case.k_cache, case.block_table, case.cache_seqlens, 512, meta, splits, 0.05, True),
    )
