#!/usr/bin/env bash
# Copyright (c) diffmtl contributors. All rights reserved.
# The launch commands shared by tools/dist_{train,test}.sh and
# tools/slurm_{train,test}.sh. Sourced by them, not run on its own; each
# script checks and names its own arguments, then calls one function here.
#
#   torchrun_tool NPROC_PER_NODE TOOL [ARGS...]
#       torchrun (python -m torch.distributed.run) of tools/TOOL ARGS...
#       Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1),
#       PORT (29500), PYTHON (python).
#   srun_tool PARTITION JOB_NAME TOOL [ARGS...]
#       srun of tools/TOOL ARGS..., one task per GPU.
#       Environment: GPUS (4, total tasks), GPUS_PER_NODE (4),
#       CPUS_PER_TASK (5), SRUN_ARGS (extra srun arguments), PYTHON (python).
#
# Both put the repository root first on PYTHONPATH.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

torchrun_tool() {
    local nproc=$1 tool=$2
    shift 2
    PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
    exec "${PYTHON:-python}" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --nproc_per_node="$nproc" \
        --master_port="${PORT:-29500}" \
        "$ROOT/tools/$tool" \
        "$@"
}

srun_tool() {
    local partition=$1 job_name=$2 tool=$3
    local gpus_per_node=${GPUS_PER_NODE:-4}
    shift 3
    # SRUN_ARGS is split into words on purpose.
    # shellcheck disable=SC2086
    PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
    srun -p "$partition" \
        --job-name="$job_name" \
        --gres=gpu:"$gpus_per_node" \
        --ntasks="${GPUS:-4}" \
        --ntasks-per-node="$gpus_per_node" \
        --cpus-per-task="${CPUS_PER_TASK:-5}" \
        --kill-on-bad-exit=1 \
        ${SRUN_ARGS:-} \
        "${PYTHON:-python}" -u "$ROOT/tools/$tool" "$@"
}
