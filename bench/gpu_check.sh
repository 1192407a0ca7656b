#!/usr/bin/env bash
# GPU readiness check of the trainer (issue 13), <= 5 minutes on one H100/H200:
#   ~125M Llama-style model, bf16 autocast, SDPA, fused AdamW, optional torch.compile (COMPILE=1);
#   tokens/s and MFU with and without replay; the data path's rate (real BPE tokenizer) against the
#   trainer's consumption; a 1-process NCCL DDP step. Figures: WORKDIR/results.json and stdout.
#
#   bash bench/gpu_check.sh                       # defaults: shared prose data, /tmp/replaymill-gpu-check
#   COMPILE=1 bash bench/gpu_check.sh --steps 80  # any bench/gpu_check.py flag passes through
#   bash bench/gpu_check.sh --size tiny           # the same code on a CPU in seconds
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
PY="${PYTHON:-python}"
# the repository root is the `replaymill` package: make it importable when it is not installed
if ! "$PY" -c "import replaymill.trainer" 2>/dev/null; then
    link="$(mktemp -d)"
    ln -s "$repo" "$link/replaymill"
    export PYTHONPATH="$link${PYTHONPATH:+:$PYTHONPATH}"
fi
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
fi
extra=()
if [ "${COMPILE:-0}" = "1" ]; then extra+=(--compile); fi
exec timeout "${TIMEOUT:-330}" "$PY" bench/gpu_check.py "${extra[@]}" "$@"
