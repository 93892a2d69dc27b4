#!/usr/bin/env bash
# Build qkv (installing its Debian packages if missing) and run the qkv command with the
# given arguments, e.g.  scripts/run.sh train configs/copy.yaml
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
qkv_install_packages
qkv_build release qkv
cd "$QKV_ROOT"
exec "$QKV_BUILD_DIR/qkv" "$@"
