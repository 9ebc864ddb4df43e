"""flash_mla: MLA (Multi-head Latent Attention) decode kernels for NVIDIA Hopper.

Drop-in for DeepSeek FlashMLA's ``flash_mla`` package (dense BF16/FP16 decode over a paged KV
cache with 64-token pages):

    from flash_mla import get_mla_metadata, flash_mla_with_kvcache

Both functions are thin wrappers over the PyTorch custom ops ``torch.ops.flash_mla.get_mla_metadata``
and ``torch.ops.flash_mla.fwd_kvcache_mla`` (usable under torch.compile and CUDA graph capture).
Importing this package does not initialise CUDA.
"""

from ._ops import _C
from .flash_mla_interface import FlashMLASchedMeta, flash_mla_with_kvcache, get_mla_metadata

__version__ = _C.__version__

__all__ = ["FlashMLASchedMeta", "get_mla_metadata", "flash_mla_with_kvcache", "__version__"]
