#!/usr/bin/env bash
# The README's first command: sets up the environment (idempotent) and runs the main job on embedded
# defaults (MediaPipe models -> convert all --target jetson-nano -> trt_infer_node over DDS on
# scikit-image samples). Outputs go to output/demo/. Arguments go to tools/demo.py (--images, --out).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
export AMENT_PREFIX_PATH="$PWD/.venv"
exec .venv/bin/python tools/demo.py "$@"
