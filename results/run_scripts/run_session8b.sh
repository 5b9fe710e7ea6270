#!/usr/bin/env bash
# Session 8, second part: after seed 0 of the long-schedule study, from a
# newer snapshot (adds the prediction_detach arm). Resumable.
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
long --max-runs 2    # seed 1 of both arms
echo "== $(date -u +%FT%TZ) long seed 1 done"
one --only prediction_detach
echo "== $(date -u +%FT%TZ) prediction_detach done"
xtc --max-runs 1     # seed 1
echo "== $(date -u +%FT%TZ) xtc seed 1 done"
one --only feature_decoder5_detach
echo "== $(date -u +%FT%TZ) feature_decoder5_detach done"
long
echo "== $(date -u +%FT%TZ) long study done"
xtc
echo "== $(date -u +%FT%TZ) all done"
