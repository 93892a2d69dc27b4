#!/usr/bin/env bash
# A failing rank ends the whole job, non-zero, with its message, and never hangs (CTest's
# timeout fails a hang). Args: MPIEXEC QKV SOURCE_DIR WORK_DIR FAILING_RANK_PROGRAM.
set -uo pipefail
mpiexec="$1" qkv="$2" src="$3" work="$4" failing="$5"
mpirun=("$mpiexec" --allow-run-as-root --oversubscribe -np 2)
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

# An exception in a step on rank 1, while rank 0 is in the next allreduce.
"${mpirun[@]}" "$failing" "$work/throws" >"$work/throws.out" 2>"$work/throws.err"
code=$?
((code != 0)) || fail "a rank that throws: exit 0"
grep -q "qkv: \[rank 1 of 2\] error: rank 1 fails on purpose after step 3" "$work/throws.err" ||
  fail "a rank that throws: its message is missing: $(cat "$work/throws.err")"

# A rank killed outright (SIGKILL) in the middle of training.
cat >"$work/long.yaml" <<'YAML'
task: {type: copy, symbols: 6, min_len: 2, max_len: 4}
model: {d_model: 16, heads: 2, layers: 1, d_ff: 32}
train: {steps: 1000000, batch_size: 4, eval_every: 1000000, eval_samples: 4}
YAML
"${mpirun[@]}" bash -c 'if [[ $OMPI_COMM_WORLD_RANK == 1 ]]; then
    exec timeout -s KILL 2 "$0" train "$1" --out "$2"; else exec "$0" train "$1" --out "$2"; fi' \
  "$qkv" "$work/long.yaml" "$work/killed" >"$work/killed.out" 2>"$work/killed.err"
code=$?
((code != 0)) || fail "a killed rank: exit 0"

# A bad config: every rank finds it, and one message says so (no abort needed).
printf 'task: {type: copy}\nmodel: {d_model: 16, heads: 2, layers: 1, d_ff: 32}\ntrain: {stepz: 3}\n' \
  >"$work/bad.yaml"
"${mpirun[@]}" "$qkv" train "$work/bad.yaml" --out "$work/bad" >"$work/bad.out" 2>"$work/bad.err"
code=$?
((code == 1)) || fail "a bad config: exit $code, expected 1: $(cat "$work/bad.err")"
[[ $(grep -c "qkv: error: .*stepz" "$work/bad.err") == 1 ]] ||
  fail "a bad config: expected its error once: $(cat "$work/bad.err")"
echo "ok: a rank that throws, a killed rank and a bad config each end the job non-zero"
