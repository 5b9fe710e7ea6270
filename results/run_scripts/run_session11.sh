#!/usr/bin/env bash
# Session 11 (2026-12-06 15:52): continues run_session10.sh from the same
# snapshot (57e604a): the two run sets still to do.
# Resumable: the runner skips finished runs and resumes from checkpoints.
set -uo pipefail
SNAP=${SNAP:?set SNAP to the snapshot worktree}
MAIN=/work/main
PY=$MAIN/.venv/bin/python
cd "$SNAP"
long() {
  $PY tools/analysis_tools/run_study.py configs/studies/synthetic_one_long.py \
      --work-dir $MAIN/work_dirs/studies/synthetic_one_long \
      --results $MAIN/results/synthetic_one_long "$@"
}
one() {
  $PY tools/analysis_tools/run_study.py configs/studies/synthetic_one.py \
      --work-dir $MAIN/work_dirs/studies/synthetic_one \
      --results $MAIN/results/synthetic_one "$@"
}
xtc() {
  $PY tools/analysis_tools/run_study.py configs/studies/synthetic_random.py \
      --work-dir $MAIN/work_dirs/studies/synthetic_random \
      --results $MAIN/results/synthetic_random --only xtc "$@"
}
echo "== $(date -u +%FT%TZ) start, snapshot $(git rev-parse --short HEAD)"
xtc                            # seed 2 (resumes from iter_1500.pth)
echo "== $(date -u +%FT%TZ) xtc done"
one --only feature_decoder5_detach   # seeds 0-2
echo "== $(date -u +%FT%TZ) all done"
