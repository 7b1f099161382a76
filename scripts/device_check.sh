#!/usr/bin/env bash
# lmeb's device check (docs/gpu.md): CUDA vs CPU vectors, fp16/bf16 vs fp32 ndcg@10, the tiny KaLM reranker
# vs its reference, two Ray workers on one GPU, the out-of-memory backoff under a memory limit, and the
# bench_gpu.py throughput ratio; prints one summary table. Under 5 minutes on one GPU; without CUDA the
# CUDA-only checks print "no CUDA device" and the rest run on the CPU. Arguments go to scripts/device_check.py
# (e.g. --only kalm,oom). Python: $PYTHON, else the repository's .venv, else python3.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="python3"; fi
fi
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TOKENIZERS_PARALLELISM=false
exec "$PY" scripts/device_check.py "$@"
