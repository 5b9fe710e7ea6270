#!/usr/bin/env bash
# Wait for seed 0 of the long study (both arms), stop run_session8.sh and
# start run_session8b.sh from a snapshot of $1.
set -u
REV=$1
DONE=/work/main/work_dirs/studies/synthetic_one_long/mtl_baseline_matched/seed_0/test.done.json
while [ ! -f "$DONE" ]; do sleep 20; done
sleep 15   # let the runner write the summary
PGID=$(ps -eo pgid,cmd | awk '/run_session8.sh/ && !/awk/ {print $1; exit}')
echo "$(date -u +%FT%TZ) stopping process group $PGID"
kill -- -"$PGID"; sleep 5; kill -9 -- -"$PGID" 2>/dev/null
SNAP=/work/snap_$REV
[ -d "$SNAP" ] || { git -C /work/main worktree add -q --detach "$SNAP" "$REV" && ln -s /work/main/data "$SNAP/data"; }
rm -rf /work/main/work_dirs/studies/synthetic_one_long/feature/seed_1
SNAP=$SNAP exec bash /work/main/work_dirs/studies/run_session8b.sh
