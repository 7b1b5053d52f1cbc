#!/usr/bin/env bash
# Sets up, idempotently, everything the main job and the tests need, inside the repository:
#   .venv                      Python >= 3.10: conversion stack, ONNX Runtime, ROS 2 wheels, test tools
#   .venv/vision_msgs/<layout> vision_msgs built from .msg files in the Foxy, Galactic and Humble layouts
#   .venv36                    Python 3.6 + numpy 1.19: the Jetson Nano's runtime Python
# A second run only checks stamps and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

ROOT=$PWD

# Runs pip outside the repository: older pips read ./setup.cfg as distutils configuration and would
# install other packages' scripts into lib/trt_infer. Chatter about unreachable extra index
# locations is noise, not information.
quiet_pip() { (cd / && "$@") 2>&1 | { grep -v -e 'is ignored: it is neither' -e '^Looking in' || true; }; }

requirements_digest() { cat "$@" | sha256sum | cut -c1-16; }

find_python() {  # find_python 3.11 -> path of a working pythonX.Y, from PATH or pyenv
    local version=$1 candidate
    for candidate in "python$version" "$(pyenv root 2>/dev/null)/versions/$version"*/bin/python"$version"; do
        # a pyenv shim is on PATH even when that version is not selected: run it to be sure
        if "$candidate" -c "import sys" >/dev/null 2>&1; then command -v "$candidate"; return 0; fi
    done
    return 1
}

host_python() {
    local version
    for version in 3.11 3.12 3.10; do
        if find_python "$version"; then return 0; fi
    done
    echo "No Python 3.10-3.12 found for the host environment: install one (e.g. pyenv install 3.11)" >&2
    return 1
}

setup_host_venv() {
    local digest
    digest=$(requirements_digest tools/requirements-host.txt)
    if [ -f .venv/.requirements-digest ] && [ "$(cat .venv/.requirements-digest)" = "$digest" ]; then
        say ".venv is up to date"
        return
    fi
    [ -x .venv/bin/python ] || "$(host_python)" -m venv .venv
    say "installing the host stack into .venv (a few minutes the first time)"
    quiet_pip "$ROOT/.venv/bin/python" -m pip install -q -r "$ROOT/tools/requirements-host.txt"
    # MediaPipe 0.10.21 is installed only for the trained .tflite models it ships; its pins would break
    # the rest of the stack, hence --no-deps.
    quiet_pip "$ROOT/.venv/bin/python" -m pip install -q --no-deps mediapipe==0.10.21
    echo "$digest" > .venv/.requirements-digest
}

setup_nano_venv() {
    local digest python36
    digest=$(requirements_digest tools/requirements-py36.txt)
    if [ -f .venv36/.requirements-digest ] && [ "$(cat .venv36/.requirements-digest)" = "$digest" ]; then
        say ".venv36 is up to date"
        return
    fi
    if ! python36=$(find_python 3.6); then
        say "Python 3.6 not found: the Jetson Nano runtime tests cannot run (install it, e.g. pyenv install 3.6.15)"
        return 1
    fi
    [ -x .venv36/bin/python ] || "$python36" -m venv .venv36
    say "installing the Jetson Nano runtime stack into .venv36"
    quiet_pip "$ROOT/.venv36/bin/python" -m pip install -q "pip==21.3.1"
    quiet_pip "$ROOT/.venv36/bin/python" -m pip install -q --only-binary=:all: -r "$ROOT/tools/requirements-py36.txt"
    echo "$digest" > .venv36/.requirements-digest
}

setup_host_venv
bash tools/build_vision_msgs.sh
setup_nano_venv
say "environment ready: .venv ($(.venv/bin/python --version 2>&1)), .venv36 ($(.venv36/bin/python --version 2>&1))"
