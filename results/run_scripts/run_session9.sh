#!/usr/bin/env bash
# Session 9 (2026-12-06 10:00): continues run_session8b.sh from the same
# snapshot (57e604a). Resumable.
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
long --max-runs 2    # seed 1 of both arms (feature resumes from iter_3000)
echo "== $(date -u +%FT%TZ) long seed 1 done"
xtc --max-runs 1     # seed 1
echo "== $(date -u +%FT%TZ) xtc seed 1 done"
one --only prediction_detach
echo "== $(date -u +%FT%TZ) prediction_detach done"
xtc                  # seed 2
echo "== $(date -u +%FT%TZ) xtc done"
long                 # seed 2
echo "== $(date -u +%FT%TZ) long study done"
one --only feature_decoder5_detach
echo "== $(date -u +%FT%TZ) all done"
