#!/usr/bin/env bash
# Session 8 (2026-12-06): the one-label detach diagnostics, the
# long-schedule study and the random-label xtc
# arm (seeds 1-2), interleaved so that both advance, from a snapshot
# worktree so that code edits in /work/main do not change what runs.
# Resumable: rerun this script (finished runs are skipped).
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
one --only feature_detach
echo "== $(date -u +%FT%TZ) feature_detach done"
long --max-runs 4    # seeds 0 and 1 of feature and mtl_baseline_matched
echo "== $(date -u +%FT%TZ) long seeds 0-1 done"
one --only feature_decoder5_detach
echo "== $(date -u +%FT%TZ) feature_decoder5_detach done"
xtc --max-runs 1     # seed 1
echo "== $(date -u +%FT%TZ) xtc seed 1 done"
long                 # seed 2
echo "== $(date -u +%FT%TZ) long study done"
xtc                  # seed 2
echo "== $(date -u +%FT%TZ) all done"
