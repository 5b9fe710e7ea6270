#!/usr/bin/env bash
# Copyright (c) diffmtl contributors. All rights reserved.
# Training on a Slurm cluster: one task per GPU.
#
#   [GPUS=8] [GPUS_PER_NODE=8] bash tools/slurm_train.sh PARTITION JOB_NAME \
#       CONFIG [tools/train.py args...]
#
# Environment: GPUS (4, total tasks), GPUS_PER_NODE (4), CPUS_PER_TASK (5),
# SRUN_ARGS (extra srun arguments), PYTHON (python).
set -euxo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG [tools/train.py args...]" >&2
    exit 2
fi
# shellcheck source=tools/_dist_common.sh
source "$(dirname "$0")/_dist_common.sh"
# PARTITION JOB_NAME CONFIG [args...]
srun_tool "$1" "$2" train.py "$3" --launcher slurm "${@:4}"
