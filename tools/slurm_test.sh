#!/usr/bin/env bash
# Copyright (c) diffmtl contributors. All rights reserved.
# Testing on a Slurm cluster: one task per GPU.
#
#   [GPUS=8] [GPUS_PER_NODE=8] bash tools/slurm_test.sh PARTITION JOB_NAME \
#       CONFIG CHECKPOINT [tools/test.py args...]
#
# Environment: GPUS (4, total tasks), GPUS_PER_NODE (4), CPUS_PER_TASK (5),
# SRUN_ARGS (extra srun arguments), PYTHON (python).
set -euxo pipefail

if [ $# -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py args...]" >&2
    exit 2
fi
# shellcheck source=tools/_dist_common.sh
source "$(dirname "$0")/_dist_common.sh"
# PARTITION JOB_NAME CONFIG CHECKPOINT [args...]
srun_tool "$1" "$2" test.py "$3" "$4" --launcher slurm "${@:5}"
