#!/usr/bin/env bash
# Runs every benchmark (CPU pre/post-processing, node overhead; GPU where pycuda and a GPU exist) and
# regenerates docs/benchmarks.md with tables and plots. Arguments go to tools/benchmark_report.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
export AMENT_PREFIX_PATH="$PWD/.venv"
exec .venv/bin/python tools/benchmark_report.py "$@"
