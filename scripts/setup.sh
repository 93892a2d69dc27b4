#!/usr/bin/env bash
# Shared by run.sh and test.sh: install the Debian packages qkv builds with (only when one
# is missing), then configure and build. Usage: source setup.sh [release|sanitize|mpi]
set -euo pipefail

QKV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# ocl-icd-opencl-dev: Debian's oneDNN is built with an OpenCL GPU runtime, so its CMake
# package looks for OpenCL; libdnnl-dev only recommends it.
QKV_PACKAGES=(g++ cmake make ccache libxtensor-dev libxtensor-blas-dev libopenblas-dev
              libdnnl-dev ocl-icd-opencl-dev liblapack-dev doctest-dev libyaml-cpp-dev
              nlohmann-json3-dev libcli11-dev libfmt-dev zlib1g-dev)

# The MPI build's packages besides (scripts/test.sh --mpi).
QKV_MPI_PACKAGES=(libopenmpi-dev openmpi-bin)

# qkv_install_packages [mpi]
qkv_install_packages() {
  local missing=() wanted=("${QKV_PACKAGES[@]}")
  [[ "${1:-}" != mpi ]] || wanted+=("${QKV_MPI_PACKAGES[@]}")
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    echo "qkv: installing ${missing[*]}" >&2
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
  fi
}

# qkv_build <flavour> <targets...>: release -> build/, sanitize -> build-sanitize/,
# mpi -> build-mpi/ (Release with QKV_MPI: every object but mpi/'s and the command's main
# compiles as release's does, so ccache has it).
qkv_build() {
  local flavour="$1"
  shift
  local dir="$QKV_ROOT/build" flags=(-DCMAKE_BUILD_TYPE=Release)
  if [[ "$flavour" == sanitize ]]; then
    dir="$QKV_ROOT/build-sanitize"
    # -O1 and line tables (-g1): what AddressSanitizer's reports need, and the build takes
    # about half the time of -O2 with full debug information.
    flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
           -DQKV_SANITIZE=ON)
  elif [[ "$flavour" == mpi ]]; then
    dir="$QKV_ROOT/build-mpi"
    flags+=(-DQKV_MPI=ON)
  fi
  cmake -S "$QKV_ROOT" -B "$dir" "${flags[@]}" >/dev/null
  cmake --build "$dir" -j"$(nproc)" --target "$@"
  QKV_BUILD_DIR="$dir"
}
