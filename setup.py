# Builds the `flash_mla` Python package: a PyTorch C++/CUDA extension (flash_mla._C) made of the
# torch binding (python/csrc) and the torch-free library's own sources (src/), compiled together.
#
#   pip install --no-build-isolation .          (MAX_JOBS=N limits parallel compile jobs)
#
# --no-build-isolation is required: the extension must be built against the torch that is installed.
import glob
import os

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _version():
    major = minor = patch = "0"
    path = os.path.join(ROOT, "include", "flashmla", "version.h")
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[0] == "#define":
                    if parts[1] == "FLASHMLA_VERSION_MAJOR":
                        major = parts[2]
                    elif parts[1] == "FLASHMLA_VERSION_MINOR":
                        minor = parts[2]
                    elif parts[1] == "FLASHMLA_VERSION_PATCH":
                        patch = parts[2]
    except OSError:
        pass
    return f"{major}.{minor}.{patch}"


def _sources():
    # Globbed at build time: the library's host, CPU and kernel sources change independently.
    patterns = [
        "python/csrc/*.cpp",
        "src/host/*.cpp",
        "src/cpu/*.cpp",
        "src/kernels/sm90/*.cu",
    ]
    files = []
    for pattern in patterns:
        files.extend(sorted(glob.glob(os.path.join(ROOT, pattern))))
    # setuptools wants paths relative to setup.py.
    return [os.path.relpath(f, ROOT) for f in files]


def _ext_modules():
    from torch.utils.cpp_extension import CUDAExtension

    nvcc_flags = [
        "-gencode=arch=compute_90a,code=sm_90a",
        "--expt-relaxed-constexpr",
        "-O3",
        "-std=c++20",
        # torch adds -D__CUDA_NO_HALF_OPERATORS__ and friends to every nvcc command; the library's
        # kernels are written for (and tested with) the plain CMake build, which has none of them.
        "-U__CUDA_NO_HALF_OPERATORS__",
        "-U__CUDA_NO_HALF_CONVERSIONS__",
        "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
        "-U__CUDA_NO_HALF2_OPERATORS__",
        "-U__CUDA_NO_BFLOAT16_OPERATORS__",
        "-U__CUDA_NO_BFLOAT162_OPERATORS__",
        "-U__CUDA_NO_BFLOAT162_CONVERSIONS__",
    ]
    extra = os.environ.get("FLASHMLA_NVCC_EXTRA_FLAGS", "").split()
    nvcc_flags.extend(extra)
    return [
        CUDAExtension(
            name="flash_mla._C",
            sources=_sources(),
            include_dirs=[os.path.join(ROOT, "include"), os.path.join(ROOT, "src")],
            extra_compile_args={"cxx": ["-O3", "-std=c++20"], "nvcc": nvcc_flags},
        )
    ]


def _cmdclass():
    from torch.utils.cpp_extension import BuildExtension

    # BuildExtension honours MAX_JOBS (ninja) by itself.
    return {"build_ext": BuildExtension.with_options(use_ninja=True)}


setup(
    name="flash_mla",
    version=_version(),
    description="MLA (Multi-head Latent Attention) decode kernels for NVIDIA Hopper, FlashMLA-compatible API",
    packages=["flash_mla"],
    package_dir={"flash_mla": "python/flash_mla"},
    ext_modules=_ext_modules(),
    cmdclass=_cmdclass(),
    python_requires=">=3.9",
    zip_safe=False,
)
