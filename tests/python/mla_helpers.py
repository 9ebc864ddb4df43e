"""Shared helpers of the Python tests: device selection, test data and the float64 reference.

Test data follows the SPEC's adversarial conventions: pages are assigned through a random
permutation, unused block-table slots hold 2147480000, and every cache row that is not a
visible token of some request (tails of last pages, spare pages, padding of non-contiguous
views) holds NaN.
"""

import math
import os

import torch

# FLASH_MLA_TEST_DEVICE=cpu runs the tests against a development build whose CPU dispatch key
# routes to the library's CPU reference backend (see the report of the binding); the default,
# and the only mode of a normal build, is cuda.
DEVICE = os.environ.get("FLASH_MLA_TEST_DEVICE", "cuda")
IS_CUDA = DEVICE == "cuda"

PAGE = 64
D_QK = 576
D_V = 512
UNUSED_SLOT = 2147480000


def device_skip_reason():
    """None when the tests can run here, else why not."""
    if not IS_CUDA:
        return None
    if not torch.cuda.is_available():
        return "flash_mla tests need a CUDA device (torch.cuda.is_available() is False)"
    major, minor = torch.cuda.get_device_capability()
    if (major, minor) != (9, 0):
        return f"flash_mla kernels need compute capability 9.0 (Hopper), this device has {major}.{minor}"
    return None


def sm_count():
    if IS_CUDA:
        return torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count
    return 132


class Case:
    """One decode problem: inputs on DEVICE plus the host copy of the lengths."""

    def __init__(self, q, k_cache, block_table, cache_seqlens, lens, h_kv, causal, dtype):
        self.q = q
        self.k_cache = k_cache
        self.block_table = block_table
        self.cache_seqlens = cache_seqlens
        self.lens = lens
        self.h_kv = h_kv
        self.causal = causal
        self.dtype = dtype

    @property
    def batch(self):
        return self.q.shape[0]

    @property
    def s_q(self):
        return self.q.shape[1]

    @property
    def h_q(self):
        return self.q.shape[2]

    @property
    def ntok(self):
        return self.s_q * self.h_q // self.h_kv

    def metadata(self):
        import flash_mla

        return flash_mla.get_mla_metadata(self.cache_seqlens, self.ntok, self.h_kv)

    def reference(self, softmax_scale=None):
        scale = softmax_scale if softmax_scale is not None else self.q.shape[-1] ** -0.5
        return reference_decode(self.q, self.k_cache, self.block_table, self.lens, scale, self.causal)


def draw_lengths(b, s_k, varlen, gen):
    if not varlen:
        return [s_k] * b
    lens = torch.randint(0, s_k + 1, (b,), generator=gen).tolist()
    lens[0] = s_k  # the longest request always appears
    return lens


def make_block_table(lens, max_blocks, gen, spare_pages=3, table_pad=0):
    """Random permuted page assignment. Returns (host table [b, max_blocks] int32, num_blocks)."""
    b = len(lens)
    used = [math.ceil(n / PAGE) for n in lens]
    assert max(used, default=0) <= max_blocks
    num_blocks = sum(used) + spare_pages
    perm = torch.randperm(num_blocks, generator=gen).to(torch.int32)
    table = torch.full((b, max_blocks + table_pad), UNUSED_SLOT, dtype=torch.int32)
    start = 0
    for r, u in enumerate(used):
        table[r, :u] = perm[start : start + u]
        start += u
    return table, num_blocks


def valid_row_mask(table, lens, num_blocks):
    """[num_blocks, PAGE] bool: which cache rows are visible tokens of some request."""
    mask = torch.zeros(num_blocks * PAGE, dtype=torch.bool)
    for r, n in enumerate(lens):
        if n == 0:
            continue
        pos = torch.arange(n)
        pages = table[r, pos // PAGE].long()
        mask[pages * PAGE + pos % PAGE] = True
    return mask.view(num_blocks, PAGE)


def fill_cache(k_cache_full, table, lens, seed):
    """Random values in visible rows, NaN everywhere else (in place, including any padding)."""
    num_blocks = k_cache_full.shape[0]
    gen = torch.Generator(device=k_cache_full.device).manual_seed(seed)
    k_cache_full.copy_(torch.randn(k_cache_full.shape, generator=gen, device=k_cache_full.device,
                                   dtype=k_cache_full.dtype))
    invalid = ~valid_row_mask(table, lens, num_blocks).to(k_cache_full.device)
    k_cache_full[invalid] = float("nan")
    if k_cache_full.shape[-1] > D_QK:
        k_cache_full[..., D_QK:] = float("nan")  # padding of a non-contiguous view


def make_case(
    b,
    s_q,
    s_k,
    h_q,
    h_kv,
    varlen,
    causal,
    dtype,
    seed,
    *,
    lens=None,
    q_noncontiguous=False,
    k_noncontiguous=False,
    table_noncontiguous=False,
    extra_table_cols=1,
    spare_pages=3,
):
    gen = torch.Generator().manual_seed(seed)
    if lens is None:
        lens = draw_lengths(b, s_k, varlen, gen)
    max_blocks = max(1, math.ceil(max(lens, default=0) / PAGE), math.ceil(s_k / PAGE)) + extra_table_cols
    table, num_blocks = make_block_table(lens, max_blocks, gen, spare_pages,
                                         table_pad=3 if table_noncontiguous else 0)

    k_width = D_QK + 64 if k_noncontiguous else D_QK
    k_full = torch.empty((num_blocks, PAGE, h_kv, k_width), dtype=dtype, device=DEVICE)
    fill_cache(k_full, table, lens, seed + 1)
    k_cache = k_full[..., :D_QK] if k_noncontiguous else k_full

    qgen = torch.Generator(device=DEVICE).manual_seed(seed + 2)
    if q_noncontiguous:
        big = torch.randn((b, s_q, h_q + 2, D_QK + 64), generator=qgen, device=DEVICE, dtype=dtype)
        q = big[:, :, 1 : h_q + 1, :D_QK]
        assert not q.is_contiguous()
    else:
        q = torch.randn((b, s_q, h_q, D_QK), generator=qgen, device=DEVICE, dtype=dtype)

    table_dev = table.to(DEVICE)
    block_table = table_dev[:, :max_blocks]
    if not table_noncontiguous:
        block_table = block_table.contiguous()
    seqlens = torch.tensor(lens, dtype=torch.int32, device=DEVICE)
    return Case(q, k_cache, block_table, seqlens, list(lens), h_kv, causal, dtype)


def reference_decode(q, k_cache, block_table, lens, scale, causal):
    """float64 attention: (out [b, s_q, h_q, 512] float64, lse [b, h_q, s_q] float64).

    Reads only visible rows; rows that see nothing get out = 0, lse = +inf.
    """
    b, s_q, h_q, d = q.shape
    h_kv = k_cache.shape[2]
    g = h_q // h_kv
    dev = q.device
    out = torch.zeros((b, s_q, h_q, D_V), dtype=torch.float64, device=dev)
    lse = torch.full((b, h_q, s_q), math.inf, dtype=torch.float64, device=dev)
    table = block_table.to(torch.int64)
    for r in range(b):
        n = int(lens[r])
        if n == 0:
            continue
        nb = math.ceil(n / PAGE)
        pages = table[r, :nb]
        keys = k_cache[pages].reshape(nb * PAGE, h_kv, d)[:n].to(torch.float64)  # [n, h_kv, d]
        qr = q[r].to(torch.float64).reshape(s_q, h_kv, g, d)
        scores = torch.einsum("skgd,nkd->kgsn", qr, keys) * scale  # [h_kv, g, s_q, n]
        if causal and s_q > 1:
            i = torch.arange(s_q, device=dev)[:, None]
            j = torch.arange(n, device=dev)[None, :]
            scores = scores.masked_fill(j > (n - s_q + i), -math.inf)
        row_max = scores.amax(dim=-1, keepdim=True)
        seen = torch.isfinite(row_max)
        row_max = torch.where(seen, row_max, torch.zeros_like(row_max))
        p = torch.exp(scores - row_max)
        denom = p.sum(dim=-1, keepdim=True)
        p = p / torch.where(denom > 0, denom, torch.ones_like(denom))
        o = torch.einsum("kgsn,nkd->skgd", p, keys[..., :D_V])
        l = torch.where(seen, row_max + torch.log(denom), torch.full_like(row_max, math.inf)).squeeze(-1)
        out[r] = o.reshape(s_q, h_q, D_V)
        lse[r] = l.reshape(h_q, s_q)
    return out, lse


def lse_tolerance(ref_lse):
    """SPEC section 1's lse tolerance for reference values ref_lse: abs 1e-6 or rel 8.01/65536."""
    return torch.clamp(ref_lse.abs() * (8.01 / 65536), min=1e-6)


def assert_matches_reference(out, lse, ref_out, ref_lse, dtype, what=""):
    """SPEC section 1 tolerances."""
    tag = f" [{what}]" if what else ""
    assert out.shape == ref_out.shape, f"out shape {tuple(out.shape)} != {tuple(ref_out.shape)}{tag}"
    assert lse.shape == ref_lse.shape, f"lse shape {tuple(lse.shape)} != {tuple(ref_lse.shape)}{tag}"
    assert out.dtype == dtype, f"out dtype {out.dtype} != {dtype}{tag}"
    assert lse.dtype == torch.float32, f"lse dtype {lse.dtype} != float32{tag}"

    o = out.to(torch.float64)
    assert not torch.isnan(o).any(), f"NaN in out ({int(torch.isnan(o).sum())} elements){tag}"
    assert not torch.isinf(o).any(), f"Inf in out{tag}"
    rounded = ref_out.to(dtype).to(torch.float64)
    err = (o - rounded).abs()
    tol = torch.clamp(rounded.abs() * (2.01 / 128), min=8e-4)
    bad = err > tol
    if bad.any():
        idx = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise AssertionError(
            f"out: {int(bad.sum())} of {bad.numel()} elements out of tolerance; first at {idx}: "
            f"got {o[idx].item()}, reference {rounded[idx].item()}; max abs err {err.max().item():.3g}{tag}"
        )
    num = 2.0 * (o * ref_out).sum()
    den = (o * o + ref_out * ref_out).sum()
    cos_diff = 0.0 if den.item() == 0.0 else 1.0 - (num / den).item()
    assert cos_diff <= 5e-6, f"out: cosine difference {cos_diff:.3g} > 5e-6{tag}"

    l = lse.to(torch.float64)
    assert torch.equal(torch.isnan(l), torch.isnan(ref_lse)), f"lse: NaN positions differ{tag}"
    inf_got = torch.isinf(l)
    inf_ref = torch.isinf(ref_lse)
    if not torch.equal(inf_got, inf_ref):
        idx = tuple(int(i) for i in torch.nonzero(inf_got != inf_ref)[0])
        raise AssertionError(
            f"lse: infinite positions differ; first at {idx}: got {l[idx].item()}, "
            f"reference {ref_lse[idx].item()}{tag}"
        )
    if inf_ref.any():
        assert torch.equal(l[inf_got] > 0, ref_lse[inf_ref] > 0), f"lse: sign of infinities differs{tag}"
        empty_rows = inf_ref.permute(0, 2, 1)  # [b, s_q, h_q]
        assert (o[empty_rows] == 0).all(), f"out: rows that see no key are not zero{tag}"
    finite = ~inf_ref & ~torch.isnan(ref_lse)
    lerr = (l - ref_lse).abs()[finite]
    ltol = lse_tolerance(ref_lse[finite])
    lbad = lerr > ltol
    assert not lbad.any(), (
        f"lse: {int(lbad.sum())} elements out of tolerance, max abs err {lerr.max().item():.3g}{tag}"
    )


def bit_equal(a, b):
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype in (torch.bfloat16, torch.float16):
        return torch.equal(a.contiguous().view(torch.int16), b.contiguous().view(torch.int16))
    if a.dtype == torch.float32:
        return torch.equal(a.contiguous().view(torch.int32), b.contiguous().view(torch.int32))
    return torch.equal(a, b)
