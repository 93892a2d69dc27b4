#!/usr/bin/python3
"""Steps and seconds each shipped config needs to reach its target eval accuracy.

For every configs/*.yaml, runs `qkv train CONFIG --stop-at TARGET` in a fresh folder and reads metrics.jsonl: the first
evaluation whose seq_acc reaches the target gives the steps and the run's elapsed seconds
(training, evaluations and checkpoints included: what a person waits). Targets: seq_acc
0.99, agreement 0.98 (its issue's bar). A config that has not reached its target after its
train.steps or --max-seconds is reported as not reached, with its best seq_acc. (The
attention variants, over seeds, are `qkv ablate configs/ablations/<task>.yaml`'s.)

  bench/time_to_target.py --qkv build/qkv [--only copy,sort]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGETS = {"agreement": 0.98}
DEFAULT_TARGET = 0.99


def measure(qkv, config, max_seconds):
    target = TARGETS.get(config.stem, DEFAULT_TARGET)
    with tempfile.TemporaryDirectory(prefix="qkv-ttt-") as out:
        start = time.monotonic()
        try:
            subprocess.run([qkv, "train", str(config), "--out", out, "--stop-at", str(target),
                            "--set", "train.threads=1"],
                           check=True, stdout=subprocess.DEVNULL, timeout=max_seconds)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        wall = time.monotonic() - start
        evals = [m for m in map(json.loads, open(os.path.join(out, "metrics.jsonl")))
                 if m["split"] == "eval"]
    reached = next((m for m in evals if m["seq_acc"] >= target), None)
    return {
        "config": str(config.relative_to(ROOT)),
        "target": target,
        "reached": reached is not None,
        "steps": reached["step"] if reached else (evals[-1]["step"] if evals else 0),
        "seconds": round(reached["elapsed_s"] if reached else wall, 2),
        "best_seq_acc": max((m["seq_acc"] for m in evals), default=0.0),
        "timed_out": timed_out,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qkv", default=str(ROOT / "build" / "qkv"),
                        help="the qkv binary (default: build/qkv)")
    parser.add_argument("--only", default="", help="comma-separated config names to run")
    parser.add_argument("--max-seconds", type=float, default=330.0,
                        help="give up on a config after this long (default 330)")
    args = parser.parse_args()
    if not os.access(args.qkv, os.X_OK):
        sys.exit(f"time_to_target.py: no qkv binary at {args.qkv} (build it, or pass --qkv)")

    configs = sorted((ROOT / "configs").glob("*.yaml"))
    if args.only:
        wanted = set(args.only.split(","))
        configs = [c for c in configs if c.stem in wanted]
    if not configs:
        sys.exit("time_to_target.py: no configs to run")

    print(f"{'config':40} {'target':>6} {'reached':>7} {'steps':>7} {'seconds':>8} {'best':>6}")
    results = []
    for config in configs:
        r = measure(args.qkv, config, args.max_seconds)
        results.append(r)
        print(f"{r['config']:40} {r['target']:6.2f} {'yes' if r['reached'] else 'NO':>7} "
              f"{r['steps']:7d} {r['seconds']:8.1f} {r['best_seq_acc']:6.3f}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
