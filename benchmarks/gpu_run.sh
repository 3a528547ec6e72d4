#!/usr/bin/env bash
# The GPU run (issue 18) in one go, for a lent GPU machine (the device tool's `run`, one H200, 15 minutes
# of device time in all). Prepare on the CPU machine first:
#
#   python -m pip wheel --no-deps -w gpu-wheels .                       # convspec itself
#   python -m pip download -d gpu-wheels pluggy hypothesis click rich jsonschema filelock   # its deps
#
# then run, carrying gpu-wheels:  bash benchmarks/gpu_run.sh   (results under $OUT, default gpu-out/).
# Each step has its own time limit, so one that hangs costs its limit, not the run; every step's exit
# status is recorded in $OUT/steps.txt and the run goes on.
set -u
OUT="${OUT:-gpu-out}"
mkdir -p "$OUT"
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log, record the exit status
  local name="$1" limit="$2"; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  echo "$name exit=$? seconds=$((SECONDS - t0))" | tee -a "$OUT/steps.txt"
}
step install 120 python -m pip install --no-index --find-links gpu-wheels convspec
step nvidia-smi 20 nvidia-smi
step backends 60 convspec backends --json
cp "$OUT/backends.log" "$OUT/backends.json" 2>/dev/null
# conformance, full profile, every GPU backend (results streamed: a cut run keeps what it wrote)
step run-gpu 300 convspec run -b torch-cuda -b torch-cuda-tf32 -b cupy -b jax --profile full -j 4 \
  --timeout 120 --out "$OUT/gpu.jsonl" --junit-xml "$OUT/gpu.junit.xml" --no-progress
step train-gpu 150 convspec train -b torch-cuda -b cupy -b jax --out "$OUT/train-gpu.jsonl"
step bench-gpu 150 convspec bench -b cupy -b torch-cuda --suite all --out "$OUT/bench-gpu.json" \
  --markdown "$OUT/bench-gpu.md"
step tests-gpu 120 python -m pytest -q -p no:cacheprovider tests/test_cupy_backend.py tests/test_torch_backend.py \
  tests/test_torch_norm_ops.py --junit-xml "$OUT/tests-gpu.xml"
