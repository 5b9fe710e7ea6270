#!/usr/bin/env bash
# Copyright (c) diffmtl contributors. All rights reserved.
# Distributed testing with torchrun: one process per GPU (per CPU worker on
# hosts without CUDA, where tools/test.py switches to gloo automatically).
#
#   bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args...]
#
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1),
# PORT (29500), PYTHON (python).
set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT NPROC_PER_NODE [tools/test.py args...]" >&2
    exit 2
fi
# shellcheck source=tools/_dist_common.sh
source "$(dirname "$0")/_dist_common.sh"
# CONFIG CHECKPOINT NPROC_PER_NODE [args...]
torchrun_tool "$3" test.py "$1" "$2" --launcher pytorch "${@:4}"
