#!/usr/bin/env bash
# The README's second command: sets up the environment (idempotent) and runs every test:
#   1. the whole suite on the host Python (.venv): runtime, converter, ROS 2 over real DDS, colcon build,
#      the static Python 3.6 compatibility check;
#   2. the runtime's tests again on the Jetson Nano's Python 3.6 + numpy 1.19 (.venv36);
#   3. the linter (ruff, configured in ruff.toml).
# Extra arguments go to both pytest runs (e.g. -k spec, -x).
set -uo pipefail
cd "$(dirname "$0")/.."

bash tools/setup_env.sh || { echo "[test] environment setup failed" >&2; exit 1; }
export AMENT_PREFIX_PATH="$PWD/.venv"
export PYTHONDONTWRITEBYTECODE=1

echo "[test] host suite: $(.venv/bin/python --version 2>&1)"
.venv/bin/python -m pytest "$@"
host_status=$?

echo "[test] Jetson Nano runtime suite: $(.venv36/bin/python --version 2>&1), numpy $(.venv36/bin/python -c 'import numpy; print(numpy.__version__)')"
nano_log=$(mktemp)
.venv36/bin/python -m pytest -p no:cacheprovider "$@" | tee "$nano_log"
nano_status=${PIPESTATUS[0]}
# A Python 3.6 run where everything skipped would prove nothing: insist that runtime tests really ran.
if ! grep -Eq '[0-9]+ passed' "$nano_log"; then
    echo "[test] no test passed under Python 3.6" >&2
    nano_status=1
fi
rm -f "$nano_log"

echo "[test] lint: $(.venv/bin/ruff --version)"
.venv/bin/ruff check .
lint_status=$?

echo "[test] host suite exit status $host_status, Python 3.6 suite exit status $nano_status, lint exit status $lint_status"
[ "$host_status" -eq 0 ] && [ "$nano_status" -eq 0 ] && [ "$lint_status" -eq 0 ]
