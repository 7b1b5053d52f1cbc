#!/usr/bin/env bash
# On the GPU machine, from a clean tree: `bash tools/gpu_check.sh`. Installs pycuda into a folder on
# PYTHONPATH (.whl/pycuda-*.whl, else built from .whl/pycuda-*.tar.gz with /usr/local/cuda/bin/nvcc) with
# the other wheels in .whl/ (pytools, platformdirs, mako, siphash24), runs `pytest -m gpu tests` and the
# GPU benchmarks. Logs and results: ${OUT:-output/gpu}. Exit 1 if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p "${OUT:-output/gpu}" && out=$(cd "${OUT:-output/gpu}" && pwd)
site="$PWD/build/gpu-site" && wheels="$PWD/build/gpu-wheels" && mkdir -p "$site" "$wheels"
export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
export PATH="$CUDA_HOME/bin:$PATH" CUDA_ROOT="$CUDA_HOME" PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
pip="python3 -m pip --disable-pip-version-check"
setup() {
  nvidia-smi; nvcc --version; python3 -V
  python3 -c "import pycuda.driver" 2>/dev/null && return 0
  shopt -s nullglob
  local built=(.whl/pycuda-*.whl) others=()
  for w in .whl/*.whl; do [[ $(basename "$w") == pycuda-* ]] || others+=("$w"); done
  [ ${#others[@]} -eq 0 ] || $pip install --no-deps --no-index --target "$site" "${others[@]}" || return 1
  if [ ${#built[@]} -eq 0 ]; then  # the build uses numpy and setuptools from here or from .whl/
    $pip wheel --no-deps --no-build-isolation --no-index -w "$wheels" .whl/pycuda-*.tar.gz || return 1
    built=("$wheels"/pycuda-*.whl)
  fi
  $pip install --no-deps --no-index --target "$site" "${built[0]}"
}
{ setup && python3 -c "import pycuda, pycuda.driver as d; d.init(); print('pycuda', pycuda.VERSION_TEXT, d.Device(0).name())"
} >"$out/setup.log" 2>&1 || { cat "$out/setup.log"; echo "setup failed: $out/setup.log"; exit 1; }
tail -n 3 "$out/setup.log"
status=0
python3 -m pytest -m gpu tests -p no:cacheprovider -ra --junitxml="$out/pytest.xml" \
  2>&1 | tee "$out/pytest.log" | tail -n 40 || status=1
for bench in gpu mapped; do
  python3 -m trt_infer.bench.$bench --out "$out" >"$out/bench_$bench.log" 2>&1 || { status=1; tail -n 20 "$out/bench_$bench.log"; }
done
cat "$out/mapped.md" 2>/dev/null
exit $status
