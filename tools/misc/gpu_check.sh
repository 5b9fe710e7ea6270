#!/usr/bin/env bash
# Check diffmtl on a GPU machine; see tools/misc/gpu_check.py and
# docs/en/gpu.md. Example:
#   bash tools/misc/gpu_check.sh --wheels .whl --target /tmp/diffmtl_site
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
exec "$PYTHON" "$HERE/gpu_check.py" "$@"
