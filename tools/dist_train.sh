#!/usr/bin/env bash
# Copyright (c) diffmtl contributors. All rights reserved.
# Distributed training with torchrun: one process per GPU (per CPU worker on
# hosts without CUDA, where tools/train.py switches to gloo automatically).
#
#   bash tools/dist_train.sh CONFIG NPROC [train.py args...]
#
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1),
# PORT (29500), PYTHON (python).
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG NPROC_PER_NODE [tools/train.py args...]" >&2
    exit 2
fi
# shellcheck source=tools/_dist_common.sh
source "$(dirname "$0")/_dist_common.sh"
# CONFIG NPROC_PER_NODE [args...]
torchrun_tool "$2" train.py "$1" --launcher pytorch "${@:3}"
