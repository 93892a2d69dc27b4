#!/usr/bin/python3
"""qkv against the PyTorch reference in training steps to the copy task's target accuracy.

Issue 11 asks that speed not be bought with convergence: with the same hyperparameters, qkv
must reach the copy task's 99% in as many steps as PyTorch, within seed noise. For each
loss setting (answer, all) and each seed, this runs `qkv train bench/convergence.yaml` and
bench/torch_ref.py's convergence mode (--target-acc) on the same model, batch, Adam, loss
positions and evaluation cadence, one after the other, and records the first evaluated step
at which each reaches the target. Prints the comparison and writes bench/CONVERGENCE.md.

  bench/convergence.py [--qkv build/qkv] [--seeds 3] [--target 0.99] [--loss-on answer,all]
                       [--out FILE]

The metric, the same on both sides: token accuracy on the answer's positions (the 8 copied
tokens and EOS: 9 per example), each predicted greedily from the true prefix (teacher
forcing), over 512 held-out examples, evaluated every EVAL_EVERY steps.
  qkv      the eval lines' token_acc in metrics.jsonl. qkv stops itself (--stop-at) once eval
           seq_acc reaches the target, which comes at or after the token_acc target
           (seq_acc >= t implies token_acc >= t); that step is reported too, for qkv alone.
  PyTorch  torch_ref.py --target-acc: its steps_to_target (it stops at the first evaluation
           whose token accuracy on the answer reaches the target).

Seed noise: the two sides draw weights and data from different generators, so seed S of
qkv and seed S of PyTorch are two independent draws; the comparison is of the two sets of
steps-to-target: their medians, their ranges (do they overlap?) and a two-sided permutation
test of the difference of their means (exact over every split of the pooled steps, or
PERMUTATIONS random splits when there are more).

Both sides' prompts draw from the same 13 symbols (vocab 16 = 13 + PAD, SEP, EOS: qkv
reserves PAD, which these fixed-length batches never read; torch_ref.py is given --symbols).
The difference that remains, by construction of the two data generators: qkv evaluates on
prompts it never trains on (a hash split of the prompt space), PyTorch on 512 fresh random
prompts.
Both sides run on 1 thread (OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1, train.threads 1).
"""
import argparse
import dataclasses
import datetime
import itertools
import json
import math
import os
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import time

from compare import (TORCH_PYTHON, clean_env, cpu_model, git_commit, load_average,
                     parameter_count, publish, qkv_version, torch_version)

BENCH = pathlib.Path(__file__).resolve().parent
ROOT = BENCH.parent
CONFIG = BENCH / "convergence.yaml"
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "GOTO_NUM_THREADS", "MKL_NUM_THREADS")}
LOSS_ON = ("answer", "all")
PERMUTATIONS = 200000  # exact below this many splits; otherwise this many random ones


@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything both sides are given: torch_ref.py's defaults (the tiny size) at T = 17,
    which qkv's copy data makes from prompts of 8 (prompt, SEP, answer, EOS, minus the last).

    torch_ref.py evaluates on 512 held-out examples (fixed in it); qkv is given as many."""
    vocab: int = 16
    d_model: int = 32
    heads: int = 2
    layers: int = 1
    d_ff: int = 128
    prompt: int = 8
    batch: int = 32
    lr: float = 1e-3
    eval_every: int = 5      # both sides: the resolution of steps-to-target
    eval_samples: int = 512
    max_steps: int = 3000    # qkv's cap; about 15 times the steps either side needs
    torch_max_seconds: float = 300.0  # PyTorch's cap (its convergence mode stops on time)

    @property
    def seq(self):
        return 2 * self.prompt + 1

    @property
    def parameters(self):
        """torch_ref.py's parameter count: embeddings, Linears with bias, LayerNorms."""
        d = self.d_model
        block = 2 * (2 * d) + 4 * (d * d + d) + (d * self.d_ff + self.d_ff) + (self.d_ff * d + d)
        return (self.vocab + self.seq) * d + self.layers * block + 2 * d + d * self.vocab + self.vocab


SETUP = Setup()


@dataclasses.dataclass
class Run:
    steps: int            # the first evaluated step at the target (or the last one, if not)
    reached: bool
    wall_s: float         # the process, start to exit (startup and evaluations included)
    qkv_seq_steps: int = None  # qkv only: the first evaluated step with seq_acc at the target


def run(command, what):
    """Runs command on one thread; returns (stdout, wall seconds)."""
    start = time.monotonic()
    child = subprocess.run(command, capture_output=True, env=clean_env(**ONE_THREAD), cwd=ROOT,
                           text=True)
    wall = time.monotonic() - start
    if child.returncode != 0:
        sys.exit(f"convergence.py: {what} failed with exit code {child.returncode}\n"
                 f"  command: {' '.join(command)}\n  stderr: {child.stderr.strip()[-2000:]}")
    return child.stdout, wall


def check_parameters(got, what):
    if got != SETUP.parameters:
        sys.exit(f"convergence.py: {what} has {got} parameters; the setup (V, d, h, L, d_ff, "
                 f"T = {SETUP.vocab}, {SETUP.d_model}, {SETUP.heads}, {SETUP.layers}, "
                 f"{SETUP.d_ff}, {SETUP.seq}) has {SETUP.parameters}: the two models differ")


def first_step(evals, key, target):
    return next((m["step"] for m in evals if m[key] >= target), None)


def qkv_run(qkv, seed, loss_on, target):
    what = f"qkv train {CONFIG.name} (seed {seed}, loss on {loss_on})"
    s = SETUP
    settings = {"seed": seed, "task.symbols": s.vocab - 3, "task.min_len": s.prompt,
                "task.max_len": s.prompt, "model.d_model": s.d_model, "model.heads": s.heads,
                "model.layers": s.layers, "model.d_ff": s.d_ff, "optim.lr": s.lr,
                "train.batch_size": s.batch, "train.steps": s.max_steps,
                "train.eval_every": s.eval_every, "train.eval_samples": s.eval_samples,
                "train.loss_on": loss_on, "train.threads": 1}
    with tempfile.TemporaryDirectory(prefix="qkv-conv-") as out:
        command = [qkv, "train", str(CONFIG), "--out", out, "--stop-at", str(target)]
        for key, value in settings.items():
            command += ["--set", f"{key}={value}"]
        stdout, wall = run(command, what)
        with open(os.path.join(out, "metrics.jsonl")) as metrics:
            evals = [m for m in map(json.loads, metrics) if m["split"] == "eval"]
    check_parameters(parameter_count(stdout, what), what)
    if not evals:
        sys.exit(f"convergence.py: {what} wrote no eval line to metrics.jsonl "
                 f"(expected one every {s.eval_every} steps)")
    steps = first_step(evals, "token_acc", target)
    return Run(steps if steps is not None else evals[-1]["step"], steps is not None, wall,
               first_step(evals, "seq_acc", target))


def torch_run(seed, loss_on, target):
    what = f"torch_ref.py --target-acc {target} (seed {seed}, loss on {loss_on})"
    s = SETUP
    command = [TORCH_PYTHON, str(BENCH / "torch_ref.py"),
               "--vocab", str(s.vocab), "--d-model", str(s.d_model), "--heads", str(s.heads),
               "--layers", str(s.layers), "--d-ff", str(s.d_ff), "--seq", str(s.seq),
               "--symbols", str(s.vocab - 3), "--batch", str(s.batch), "--lr", str(s.lr),
               "--loss-on", loss_on,
               "--threads", "1", "--blas-threads", "1", "--seed", str(seed),
               "--target-acc", str(target), "--eval-every", str(s.eval_every),
               "--max-seconds", str(s.torch_max_seconds)]
    stdout, wall = run(command, what)
    result = json.loads(stdout.strip().splitlines()[-1])
    check_parameters(result["params"], what)
    return Run(result["steps_to_target"], result["reached"], wall)


def permutation_p(a, b):
    """Two-sided p-value of |mean(a) - mean(b)| under random relabelling of the pooled
    values: exact when there are at most PERMUTATIONS splits, else PERMUTATIONS random ones
    (a fixed generator, so a re-run of the same steps gives the same p)."""
    pooled, n = a + b, len(a)
    observed = abs(statistics.mean(a) - statistics.mean(b)) - 1e-9  # ties count as extreme
    total = sum(pooled)

    def extreme(chosen_sum):
        return abs(chosen_sum / n - (total - chosen_sum) / len(b)) >= observed

    splits = math.comb(len(pooled), n)
    if splits <= PERMUTATIONS:
        return sum(extreme(sum(c)) for c in itertools.combinations(pooled, n)) / splits
    rng = random.Random(11)
    count = sum(extreme(sum(rng.sample(pooled, n))) for _ in range(PERMUTATIONS))
    return (count + 1) / (PERMUTATIONS + 1)


@dataclasses.dataclass
class Comparison:
    qkv: list
    torch: list

    def steps(self, side):
        return [r.steps for r in getattr(self, side)]

    def all_reached(self):
        return all(r.reached for r in self.qkv + self.torch)

    def overlap(self):
        q, t = self.steps("qkv"), self.steps("torch")
        return max(min(q), min(t)) <= min(max(q), max(t))

    def p_value(self):
        return permutation_p(self.steps("qkv"), self.steps("torch"))

    def verdict(self):
        if not self.all_reached():
            return "not comparable: a run did not reach the target (see the table)"
        p = self.p_value()
        ratio = statistics.median(self.steps("qkv")) / statistics.median(self.steps("torch"))
        differences = []
        if not self.overlap():
            differences.append("the ranges do not overlap")
        if p < 0.05:
            differences.append(f"the means differ more than relabelled seeds make them "
                               f"(p = {p:.3f})")
        if differences:
            return f"DIFFERENT: {'; '.join(differences)}; median ratio qkv / PyTorch {ratio:.2f}"
        return (f"alike, within seed noise: the ranges overlap, and the means differ no more "
                f"than relabelled seeds make them (p = {p:.2f}); median ratio qkv / PyTorch "
                f"{ratio:.2f}")


def measure(args, seeds):
    """Returns {loss_on: Comparison}; per seed, qkv then PyTorch."""
    results = {}
    for loss_on in args.loss_on:
        comparison = Comparison([], [])
        for seed in seeds:
            comparison.qkv.append(qkv_run(args.qkv, seed, loss_on, args.target))
            comparison.torch.append(torch_run(seed, loss_on, args.target))
            q, t = comparison.qkv[-1], comparison.torch[-1]
            print(f"loss on {loss_on:6} seed {seed:2}: qkv {q.steps:5d} steps "
                  f"{'' if q.reached else '(not reached) '}{q.wall_s:5.1f} s, "
                  f"PyTorch {t.steps:5d} steps {'' if t.reached else '(not reached) '}"
                  f"{t.wall_s:5.1f} s", flush=True)
        results[loss_on] = comparison
    return results


def steps_text(run):
    return f"{run.steps}" if run.reached else f"not reached by {run.steps}"


def seed_table(seeds, comparison):
    lines = ["| seed | qkv steps | PyTorch steps | qkv wall s | PyTorch wall s "
             "| qkv steps to seq_acc target |", "|---|---|---|---|---|---|"]
    for seed, q, t in zip(seeds, comparison.qkv, comparison.torch):
        seq = q.qkv_seq_steps if q.qkv_seq_steps is not None else "not reached"
        lines.append(f"| {seed} | {steps_text(q)} | {steps_text(t)} | {q.wall_s:.1f} "
                     f"| {t.wall_s:.1f} | {seq} |")
    return "\n".join(lines)


def summary_table(comparison):
    lines = ["| side | median steps | range | mean ± sd | total wall s |", "|---|---|---|---|---|"]
    for side, name in (("qkv", "qkv"), ("torch", "PyTorch")):
        steps = comparison.steps(side)
        sd = statistics.stdev(steps) if len(steps) > 1 else 0.0
        wall = sum(r.wall_s for r in getattr(comparison, side))
        lines.append(f"| {name} | {statistics.median(steps):g} | {min(steps)}–{max(steps)} "
                     f"| {statistics.mean(steps):.0f} ± {sd:.0f} | {wall:.0f} |")
    return "\n".join(lines)


def report(context, args, seeds, results):
    c, s = context, SETUP
    sections = []
    for loss_on, comparison in results.items():
        positions = ("the answer's 9 positions" if loss_on == "answer"
                     else f"all {s.seq} positions (the prompt's too)")
        sections.append(f"""## Loss on {loss_on}: {positions}

{seed_table(seeds, comparison)}

{summary_table(comparison)}

**{comparison.verdict()}**
""")
    splits = math.comb(2 * len(seeds), len(seeds))
    few = (f"\nWith {len(seeds)} seed(s) a side the permutation test cannot reach p < 0.05 "
           f"(its smallest two-sided p, over {splits} splits, is {2 / splits:.2f}): only the "
           f"ranges speak.\n" if 2 / splits >= 0.05 else "")
    return f"""# qkv against PyTorch: steps to the copy task's {args.target:g}

Written by `bench/convergence.py`; bench/README.md says how it measures.

- Date: {c['date']}; the full run took {c['duration']}
- Commit: {c['commit']}
- qkv: `{args.qkv}` ({c['qkv_version']}), `train.threads` 1
- PyTorch {c['torch']} (Debian python3-torch under {TORCH_PYTHON}), 1 intra-op and 1 OpenBLAS thread
- CPU: {c['cpu']}; load average (1, 5, 15 min) {c['load_before']} before, {c['load_after']} after
- Model and data, both sides: V {s.vocab}, d {s.d_model}, heads {s.heads}, layers {s.layers},
  d_ff {s.d_ff}, T {s.seq} (copy prompts of {s.prompt}), {s.parameters:,} parameters;
  batch {s.batch}, Adam lr {s.lr:g} (betas 0.9, 0.999, eps 1e-8, no clipping, constant rate)
- Metric: token accuracy on the answer's positions (8 copied tokens and EOS), teacher-forced,
  on {s.eval_samples} held-out examples, evaluated every {s.eval_every} steps on both sides;
  "steps" is the first evaluated step at which it reaches {args.target:g}
- Seeds {seeds[0]}–{seeds[-1]} on each side (independent draws: the two sides' generators differ);
  wall seconds are each process's, start to exit, on a machine other jobs may share
- Data: copy prompts of {s.vocab - 3} symbols on both sides (vocab {s.vocab}; qkv reserves PAD,
  torch_ref.py is given --symbols); the known difference: qkv evaluates on prompts held out
  from training by a hash split, PyTorch on {s.eval_samples} fresh random prompts
{few}
{chr(10).join(sections)}"""


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qkv", default=str(ROOT / "build" / "qkv"),
                        help="the qkv binary (default: build/qkv)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="seeds per side and loss setting: 0..N-1 (default 3)")
    parser.add_argument("--target", type=float, default=0.99,
                        help="the token accuracy to reach (default 0.99)")
    parser.add_argument("--loss-on", default=",".join(LOSS_ON),
                        help=f"comma-separated loss settings to compare (default "
                             f"{','.join(LOSS_ON)})")
    parser.add_argument("--out", default=str(BENCH / "CONVERGENCE.md"),
                        help="the report to write (default: bench/CONVERGENCE.md)")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1; got {args.seeds}")
    if not 0 < args.target <= 1:
        parser.error(f"--target must be in (0, 1]; got {args.target}")
    args.loss_on = args.loss_on.split(",")
    unknown = [name for name in args.loss_on if name not in LOSS_ON]
    if unknown:
        parser.error(f"--loss-on: unknown setting {', '.join(unknown)} "
                     f"(known: {', '.join(LOSS_ON)})")
    if not os.access(args.qkv, os.X_OK):
        parser.error(f"no qkv binary at {args.qkv} (build it, or pass --qkv)")
    return args


def main():
    args = parse()
    context = {"torch": torch_version()}
    if context["torch"] is None:
        sys.exit(f"convergence.py: no `import torch` under {TORCH_PYTHON} (Debian's "
                 f"python3-torch provides it); there is nothing to compare qkv with")
    started = time.monotonic()
    context.update({"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
                    "commit": git_commit(), "qkv_version": qkv_version(args.qkv),
                    "cpu": cpu_model(), "load_before": load_average()})
    seeds = list(range(args.seeds))
    results = measure(args, seeds)
    publish(context, started, lambda: report(context, args, seeds, results), args.out)


if __name__ == "__main__":
    main()
