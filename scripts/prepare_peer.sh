#!/usr/bin/env bash
# Fills .peer/ (git-ignored; carry it with the device call) with FlashMLA's decode extension as PyPI
# ships it inside vLLM's wheel (vllm/_flashmla_C.abi3.so, linked against torch 2.11 and CUDA 13 like
# the device image), so that the benchmark can time FlashMLA side by side with flash_mla on the same
# GPU (bench/peer/flashmla_peer.py). Benchmark-only; nothing here is linked into the library.
#   bash scripts/prepare_peer.sh            # ~330 MB download once, cached in .peer-cache/
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
vllm_version="${VLLM_VERSION:-0.26.0}"   # the last vLLM release that requires torch==2.11.0
cache="${PEER_CACHE:-$root/.peer-cache}"
dest="$root/.peer"
mkdir -p "$cache" "$dest"
wheel=$(ls "$cache"/vllm-"$vllm_version"-*.whl 2>/dev/null | head -1 || true)
if [ -z "$wheel" ]; then
  python3 -m pip download -q --no-deps -d "$cache" "vllm==$vllm_version"
  wheel=$(ls "$cache"/vllm-"$vllm_version"-*.whl | head -1)
fi
unzip -q -o -j "$wheel" 'vllm/_flashmla_C.abi3.so' -d "$dest"
torch_req=$(unzip -p "$wheel" "vllm-$vllm_version.dist-info/METADATA" | grep -m1 '^Requires-Dist: torch==' | cut -d' ' -f2)
echo "vllm $vllm_version (vllm/_flashmla_C.abi3.so; wheel requires $torch_req)" >"$dest/VERSION"
echo "prepare_peer: $dest ready ($(du -sh "$dest" | cut -f1)): $(cat "$dest/VERSION")"
