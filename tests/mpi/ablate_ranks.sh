#!/usr/bin/env bash
# `qkv ablate` over 2 ranks writes the table one process writes, and a second run over 2
# ranks finds every run finished. Args: MPIEXEC QKV SOURCE_DIR WORK_DIR.
set -euo pipefail
mpiexec="$1" qkv="$2" src="$3" work="$4"
mpirun=("$mpiexec" --allow-run-as-root --oversubscribe -np 2)
rm -rf "$work" && mkdir -p "$work"
"${mpirun[@]}" "$qkv" ablate "$src/sweep.yaml" --out "$work/two" --jobs 1 >"$work/two.log"
"$qkv" ablate "$src/sweep.yaml" --out "$work/one" --jobs 1 >"$work/one.log"
for table in ablation.csv; do
  cmp "$work/one/$table" "$work/two/$table" || {
    echo "FAIL: $table of 2 ranks differs from 1 process's"; diff "$work/one/$table" "$work/two/$table"; exit 1; }
done
# Every run's metrics, written by whichever rank trained it, is the one process's (but for
# the times and speeds).
untimed() { sed -E 's/"(elapsed_s|tokens_per_s)":[^,}]*//g' "$1"; }
for run in learned/seed-0 learned/seed-1 none/seed-0 none/seed-1; do
  cmp <(untimed "$work/one/$run/metrics.jsonl") <(untimed "$work/two/$run/metrics.jsonl") ||
    { echo "FAIL: $run's metrics differ"; exit 1; }
done
"${mpirun[@]}" "$qkv" ablate "$src/sweep.yaml" --out "$work/two" --jobs 1 >"$work/again.log"
grep -q "4 finished, 0 to resume, 0 to start" "$work/again.log" ||
  { echo "FAIL: the second sweep did not find its 4 runs finished:"; cat "$work/again.log"; exit 1; }
cmp "$work/one/ablation.csv" "$work/two/ablation.csv"
echo "ok: the 2-rank sweep's table is the 1-process one's"
