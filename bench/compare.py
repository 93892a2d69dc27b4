#!/usr/bin/python3
"""ms/step of qkv and of the PyTorch reference on the `tiny` size, side by side.

Both train the same model on the same copy-task shapes at 1 thread (vocab 16, d_model 32,
2 heads, 1 layer, d_ff 128, seq 16, batch 32, Adam 1e-3, loss on all positions):
  qkv:      `qkv train bench/tiny.yaml`; ms/step from metrics.jsonl's tokens_per_s, which
            the trainer measures over the training steps alone (batch sampling included,
            evaluation and checkpoints not), skipping the first window (warm-up)
  PyTorch:  bench/torch_ref.py in its throughput mode (batch sampling included, warm-up
            steps untimed)
The runs alternate (qkv, torch, qkv, torch, ...) so that machine noise hits both alike;
the medians are reported with their ratio.

  bench/compare.py --qkv build/qkv [--runs 5] [--steps 600]
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

BENCH = pathlib.Path(__file__).resolve().parent
TOKENS_PER_STEP = 32 * 16  # batch x seq of bench/tiny.yaml


def qkv_ms_per_step(qkv, steps):
    with tempfile.TemporaryDirectory(prefix="qkv-bench-") as out:
        subprocess.run(
            [qkv, "train", str(BENCH / "tiny.yaml"), "--out", out,
             "--set", f"train.steps={steps}", "--set", f"train.eval_every={steps}"],
            check=True, stdout=subprocess.DEVNULL)
        lines = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    rates = [m["tokens_per_s"] for m in lines if m["split"] == "train"][1:]
    # Every window has the same number of steps, so the mean rate is the harmonic mean.
    ms = [1000.0 * TOKENS_PER_STEP / rate for rate in rates]
    return statistics.mean(ms)


def torch_ms_per_step(steps):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    result = subprocess.run(
        ["/usr/bin/python3", str(BENCH / "torch_ref.py"), "--vocab", "16", "--d-model", "32",
         "--heads", "2", "--layers", "1", "--d-ff", "128", "--seq", "16", "--batch", "32",
         "--lr", "1e-3", "--loss-on", "all", "--threads", "1", "--steps", str(steps),
         "--warmup", "20"],
        check=True, capture_output=True, text=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])["ms_per_step"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qkv", default=str(BENCH.parent / "build" / "qkv"),
                        help="the qkv binary (default: build/qkv)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=600, help="timed steps per qkv run")
    parser.add_argument("--torch-steps", type=int, default=300, help="timed steps per torch run")
    args = parser.parse_args()
    if not os.access(args.qkv, os.X_OK):
        sys.exit(f"compare.py: no qkv binary at {args.qkv} (build it, or pass --qkv)")

    qkv_runs, torch_runs = [], []
    for run in range(args.runs):
        qkv_runs.append(qkv_ms_per_step(args.qkv, args.steps))
        torch_runs.append(torch_ms_per_step(args.torch_steps))
        print(f"run {run + 1}/{args.runs}: qkv {qkv_runs[-1]:.3f} ms/step, "
              f"torch {torch_runs[-1]:.3f} ms/step", flush=True)
    qkv_ms = statistics.median(qkv_runs)
    torch_ms = statistics.median(torch_runs)
    print(f"\ntiny size, 1 thread, median of {args.runs} runs")
    print(f"  qkv      {qkv_ms:8.3f} ms/step")
    print(f"  pytorch  {torch_ms:8.3f} ms/step")
    print(f"  ratio    {torch_ms / qkv_ms:8.2f}x (pytorch time / qkv time)")


if __name__ == "__main__":
    main()
