#!/usr/bin/env bash
# Builds the vision_msgs test fixtures (tests/fixtures/vision_msgs/<layout>: the Foxy 2.x, Galactic 3.x
# and Humble+ 4.x field layouts) with cmake and the ROS 2 wheels in .venv, each into its own prefix
# .venv/vision_msgs/<layout>. Idempotent: a layout whose install is newer than its sources, this script
# and the installed ROS wheels is skipped. Select layouts with arguments (default: all three).
# A test process picks one through tests/support/ros_env.py: ros_environment(layout), which puts the
# layout's lib/ on LD_LIBRARY_PATH. No RPATH on purpose: rosidl_typesupport_c dlopen()s the layout's
# type support by bare name, which RPATH cannot serve, so a process without that LD_LIBRARY_PATH should
# fail at `import vision_msgs.msg`, not later with a cryptic rcutils error on the first publish.
set -euo pipefail
SCRIPT=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$SCRIPT")/.."

VENV=$PWD/.venv
PYTHON=$VENV/bin/python
FIXTURES=tests/fixtures/vision_msgs
BUILD_ROOT=$PWD/.cache/vision_msgs_build

say() { printf '[vision_msgs] %s\n' "$*"; }

[ -x "$PYTHON" ] || { echo "[vision_msgs] $PYTHON not found: run tools/setup_env.sh first" >&2; exit 1; }

# The wheels' exported CMake targets name the include folders of the manylinux build machine
# (/opt/python/cp3X-cp3X/...), which do not exist here: point them at this interpreter's Python and
# numpy headers. Rewriting is idempotent (a second run finds nothing to replace).
point_wheel_cmake_at_local_headers() {
    "$PYTHON" - "$VENV/share" <<'EOF'
import pathlib, re, sys, sysconfig
import numpy

python_include = sysconfig.get_paths()["include"]
numpy_include = numpy.get_include()
build_machine = re.compile(r"/opt/python/cp3\d+-cp3\d+/(include/python3\.\d+|lib/python3\.\d+/site-packages/numpy/\S*?include)(?=[\";)\s])")

def local(match):
    return python_include if match.group(1).startswith("include/") else numpy_include

for path in pathlib.Path(sys.argv[1]).rglob("*.cmake"):
    text = path.read_text()
    fixed = build_machine.sub(local, text)
    if fixed != text:
        path.write_text(fixed)
        print(f"[vision_msgs] pointed {path.relative_to(sys.argv[1])} at the local Python/numpy headers")
EOF
}

is_up_to_date() {  # is_up_to_date <stamp> <sources...>
    local stamp=$1; shift
    [ -f "$stamp" ] && [ -z "$(find "$@" -newer "$stamp" -print -quit)" ]
}

build_layout() {
    local layout=$1
    local source=$FIXTURES/$layout prefix=$VENV/vision_msgs/$layout build=$BUILD_ROOT/$layout
    local stamp=$prefix/.build-stamp started=$SECONDS generator=()
    [ -f "$source/package.xml" ] || { echo "[vision_msgs] unknown layout '$layout': no $source/package.xml (layouts: foxy galactic humble)" >&2; return 1; }
    # The ROS wheels' dist-info folders change only when pip (re)installs them.
    local inputs=("$source" "$SCRIPT" "$VENV"/lib/python3*/site-packages/ros_*.dist-info)
    if is_up_to_date "$stamp" "${inputs[@]}"; then
        say "$layout is up to date ($prefix)"
        return
    fi
    command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
    rm -rf "$build" "$prefix.new"
    say "building the $layout layout into $prefix"
    if ! AMENT_PREFIX_PATH=$VENV "$VENV/bin/cmake" -S "$source" -B "$build" "${generator[@]}" \
            -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$prefix" \
            -DPython3_EXECUTABLE="$PYTHON" -DBUILD_TESTING=OFF >"$build.log" 2>&1 \
        || ! AMENT_PREFIX_PATH=$VENV "$VENV/bin/cmake" --build "$build" -j 2 >>"$build.log" 2>&1 \
        || ! "$VENV/bin/cmake" --install "$build" --prefix "$prefix.new" >>"$build.log" 2>&1; then
        tail -n 40 "$build.log" >&2
        echo "[vision_msgs] building the $layout layout failed; full log: $build.log" >&2
        return 1
    fi
    # Swap the finished install in, so tests running meanwhile keep a complete layout.
    touch "$prefix.new/.build-stamp"
    rm -rf "$prefix.old"
    [ ! -d "$prefix" ] || mv "$prefix" "$prefix.old"
    mv "$prefix.new" "$prefix"
    rm -rf "$prefix.old"
    say "built $layout in $((SECONDS - started)) s"
}

mkdir -p "$BUILD_ROOT"
# Several checkouts' test runs may set up at once: one builder at a time, the others then find it done.
exec 9>"$BUILD_ROOT/.lock"
flock 9
point_wheel_cmake_at_local_headers
layouts=("$@")
[ ${#layouts[@]} -gt 0 ] || layouts=(foxy galactic humble)
for layout in "${layouts[@]}"; do build_layout "$layout"; done
