#!/usr/bin/env bash
# The GPU check as run on a lent CUDA machine (see BENCHMARKS.md): build the compiled core there (Eigen's
# headers travel as the cmeel/cmeel-eigen wheels in .whl/, since that machine cannot reach PyPI), run the torch
# backend's parity tests on CUDA, then time every kernel on CUDA against the CPU core.
# Usage: bash benchmarks/run_on_gpu.sh OUTDIR
set -u
out=${1:-/tmp/pedrank-gpu}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/device.txt"
python3 -m pip install -q --no-index --no-deps .whl/*.whl
if python3 -m pip install -q --no-index --no-deps --no-build-isolation . >"$out/build.log" 2>&1; then
  echo "core built"
  # benchmarks/gpu.py imports pedrank from python/: put the compiled module beside those sources.
  cp "$(cd /tmp && python3 -c 'import pedrank._core as c; print(c.__file__)')" python/pedrank/
else
  echo "core build FAILED (see build.log); the CPU column falls back to the NumPy array kernels"
fi
# Run from outside the checkout so the installed package (with its compiled core) is imported.
(cd /tmp && PEDRANK_TEST_DEVICE=cuda timeout 240 python3 -m pytest -q -p no:cacheprovider \
  "$OLDPWD"/tests/test_backend_vectors.py "$OLDPWD"/tests/test_backend_reference.py \
  "$OLDPWD"/tests/test_backend_selection.py 2>&1 | tail -15) | tee "$out/tests.txt"
timeout 300 python3 benchmarks/gpu.py --output "$out/gpu_results.md" 2>&1 | tail -40
