#!/usr/bin/python3
"""qkv against the PyTorch reference at every size and thread count, side by side.

For each size (tiny, small, medium: issue 11's table) and each thread count (1, 2) it runs
`qkv train bench/<size>.yaml` and bench/torch_ref.py on the same model, batch shape, Adam and
copy data, alternating (qkv, torch, qkv, torch, ...) so that machine noise hits both alike,
and reports the median of --runs runs of each. Prints the table and writes bench/RESULTS.md.

  bench/compare.py [--qkv build/qkv] [--runs 3] [--quick] [--sizes tiny,medium] [--out FILE]

What is measured, per run:
  qkv      ms/step from metrics.jsonl's tokens_per_s, which the trainer measures over the
           training steps alone (batch sampling included, evaluation and checkpoints not);
           the first log window is skipped (warm-up). Threads: `train.threads` (qkv's pool).
  PyTorch  bench/torch_ref.py's throughput mode (batch sampling included, warm-up steps
           untimed), under Debian's /usr/bin/python3 and python3-torch. Threads: 1 thread is
           1 intra-op and 1 OpenBLAS thread; 2 threads is its best 2-core setting, 1 intra-op
           thread with 2 OpenBLAS threads (torch_ref.py --threads 1 --blas-threads 2).
  peak RSS the child's maximum resident set size as GNU time reports it (/usr/bin/time,
           Debian's `time`), the same way for both.

GEMM FLOPs of one training step, counted from the shapes (N = B*T tokens, dh = d/h):
  a Linear (N x d_in) @ (d_in x d_out) costs 2*N*d_in*d_out forward, and as much again for
  each of the two backward products (dX = dY W^T, dW = X^T dY): 6*N*d_in*d_out per step.
    per layer: Wq, Wk, Wv, Wo (d x d) and W1 (d x d_ff), W2 (d_ff x d)
                                                     6*N*(4*d*d + 2*d*d_ff)
    the head (d x V)                                 6*N*d*V
  attention, per layer and (batch, head): S = Q K^T and O = P V, each 2*T*T*dh forward;
  backward dQ = dS K, dK = dS^T Q, dP = dO V^T, dV = P^T dO, each 2*T*T*dh. Over B*h slices,
  counting the full T x T score matrix (neither side skips the causal half):
                                                     12*B*T*T*d
  Embedding lookups, layer norm, GELU, softmax, the loss and Adam are not GEMMs and are not
  counted. This is torch_ref.py's flops_per_token times B*T.

The sgemm peak: OpenBLAS's cblas_sgemm and oneDNN's dnnl_sgemm, each called through ctypes
on 2048 x 2048 float32 matrices at 1 thread, best of 12 calls, once before and once after the
runs; the fastest of all is the peak. They are the very libraries the qkv binary loads (found
with ldd), so the share says how close a training step comes to the faster of its own GEMM
kernels' ceilings on this core; numpy or torch could reach another BLAS through Debian's
alternatives.
"""
import argparse
import ctypes
import ctypes.util
import dataclasses
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = pathlib.Path(__file__).resolve().parent
ROOT = BENCH.parent
TORCH_PYTHON = "/usr/bin/python3"
TIME = "/usr/bin/time"  # GNU time (Debian package `time`): the peak RSS of a child
THREADS = (1, 2)
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "MKL_NUM_THREADS")


@dataclasses.dataclass(frozen=True)
class Size:
    """One benchmark size: its model and batch shape, and how many steps each side times.

    Step counts keep each timed run at a few seconds on one core; qkv times
    qkv_steps - log_every steps (its first window is warm-up), PyTorch torch_steps after
    torch_warmup untimed ones."""
    vocab: int
    d_model: int
    heads: int
    layers: int
    d_ff: int
    seq: int
    batch: int
    qkv_steps: int
    log_every: int
    torch_steps: int
    torch_warmup: int

    @property
    def tokens_per_step(self):
        return self.batch * self.seq

    @property
    def gemm_flops_per_step(self):
        n, d = self.tokens_per_step, self.d_model
        linears = 6 * n * (self.layers * (4 * d * d + 2 * d * self.d_ff) + d * self.vocab)
        attention = 12 * self.layers * self.batch * self.seq * self.seq * d
        return linears + attention

    @property
    def parameters(self):
        """torch_ref.py's parameter count: embeddings, Linears with bias, LayerNorms."""
        d = self.d_model
        block = 2 * (2 * d) + 4 * (d * d + d) + (d * self.d_ff + self.d_ff) + (self.d_ff * d + d)
        return (self.vocab + self.seq) * d + self.layers * block + 2 * d + d * self.vocab + self.vocab

    def shape_text(self):
        return (f"{self.vocab}, {self.d_model}, {self.heads}, {self.layers}, {self.d_ff}, "
                f"{self.seq}, {self.batch}")


# T is 2p + 1 for copy prompts of p tokens (prompt, SEP, answer, EOS, minus the last): the
# nearest to issue 11's 16 / 64 / 128 that qkv's copy data gives; PyTorch runs at the same T.
SIZES = {
    "tiny": Size(16, 32, 2, 1, 128, 17, 32, qkv_steps=600, log_every=50,
                 torch_steps=300, torch_warmup=20),
    "small": Size(64, 128, 4, 2, 512, 65, 32, qkv_steps=60, log_every=10,
                  torch_steps=50, torch_warmup=5),
    "medium": Size(256, 256, 8, 4, 1024, 129, 16, qkv_steps=12, log_every=2,
                   torch_steps=10, torch_warmup=2),
}
QUICK_SIZES = ("tiny", "small")


@dataclasses.dataclass
class Run:
    ms_per_step: float
    peak_rss_mb: float


def run_child(command, env, what):
    """Runs command to completion under GNU time; returns (stdout, the child's peak RSS in MB).

    GNU time forks the child from its own small process. Measuring from here instead
    (wait4's ru_maxrss) would count this Python process's pages, which a forked child holds
    until it execs."""
    with tempfile.NamedTemporaryFile("r", prefix="qkv-bench-rss-") as rss:
        timed = [TIME, "--format=%M", f"--output={rss.name}", *command]
        child = subprocess.run(timed, capture_output=True, env=env, cwd=ROOT, text=True)
        if child.returncode != 0:
            sys.exit(f"compare.py: {what} failed with exit code {child.returncode}\n"
                     f"  command: {' '.join(command)}\n  stderr: {child.stderr.strip()[-2000:]}")
        return child.stdout, int(rss.read().split()[-1]) / 1024.0


def clean_env(**settings):
    """The environment without inherited thread settings, plus the given ones: each side's
    thread count is then only what this script asks for."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
    env.update(settings)
    return env


def parameter_count(stdout, what):
    for line in stdout.splitlines():
        # "# model: N parameters" or "# model: N parameters (M in attention)"
        words = line.split()
        if line.startswith("# model:") and len(words) > 3 and words[3] == "parameters":
            return int(words[2])
    sys.exit(f"compare.py: {what} printed no '# model: N parameters' line")


def check_parameters(name, size, got, what):
    if got != size.parameters:
        sys.exit(f"compare.py: {what} has {got} parameters; the {name} size "
                 f"(V, d, h, L, d_ff, T, B = {size.shape_text()}) has {size.parameters}: "
                 f"the two models differ")


def qkv_run(qkv, name, size, threads):
    what = f"qkv train bench/{name}.yaml at {threads} thread(s)"
    with tempfile.TemporaryDirectory(prefix="qkv-bench-") as out:
        command = [qkv, "train", str(BENCH / f"{name}.yaml"), "--out", out,
                   "--set", f"train.steps={size.qkv_steps}",
                   "--set", f"train.eval_every={size.qkv_steps}",
                   "--set", f"train.log_every={size.log_every}",
                   "--set", f"train.batch_size={size.batch}",
                   "--set", f"train.threads={threads}"]
        stdout, rss = run_child(command, clean_env(), what)
        with open(os.path.join(out, "metrics.jsonl")) as metrics:
            lines = [json.loads(line) for line in metrics]
    check_parameters(name, size, parameter_count(stdout, what), what)
    rates = [m["tokens_per_s"] for m in lines if m["split"] == "train"][1:]
    if not rates:
        sys.exit(f"compare.py: {what} logged no train line after its first window "
                 f"(expected {size.qkv_steps // size.log_every - 1})")
    # Every window has the same number of steps, so the mean of the windows' ms/step is
    # the run's ms/step.
    ms = statistics.mean(1000.0 * size.tokens_per_step / rate for rate in rates)
    return Run(ms, rss)


def torch_run(name, size, threads):
    what = f"torch_ref.py at the {name} size, {threads} thread(s)"
    command = [TORCH_PYTHON, str(BENCH / "torch_ref.py"),
               "--vocab", str(size.vocab), "--d-model", str(size.d_model),
               "--heads", str(size.heads), "--layers", str(size.layers),
               "--d-ff", str(size.d_ff), "--seq", str(size.seq), "--batch", str(size.batch),
               "--lr", "1e-3", "--loss-on", "all",
               "--threads", "1", "--blas-threads", str(threads),
               "--steps", str(size.torch_steps), "--warmup", str(size.torch_warmup)]
    stdout, rss = run_child(command, clean_env(), what)
    result = json.loads(stdout.strip().splitlines()[-1])
    check_parameters(name, size, result["params"], what)
    return Run(result["ms_per_step"], rss)


def torch_version():
    """PyTorch's version under Debian's python, or None when python3-torch is absent."""
    if not os.access(TORCH_PYTHON, os.X_OK):
        return None
    probe = subprocess.run([TORCH_PYTHON, "-c", "import torch; print(torch.__version__)"],
                           capture_output=True, text=True, env=clean_env(OMP_NUM_THREADS="1"))
    return probe.stdout.strip() if probe.returncode == 0 else None


def linked_library(qkv, stem):
    """The lib<stem> shared library the qkv binary loads, or the system's when ldd does not
    name one (e.g. a static build)."""
    ldd = subprocess.run(["ldd", qkv], capture_output=True, text=True)
    for line in ldd.stdout.splitlines():
        parts = line.split()
        if parts and parts[0].startswith(f"lib{stem}") and "=>" in parts:
            return parts[parts.index("=>") + 1]
    found = ctypes.util.find_library(stem)
    if found is None:
        sys.exit(f"compare.py: found no lib{stem} (ldd {qkv} names none, nor does the "
                 f"system) to measure the sgemm peak with")
    return found


class Sgemm:
    """One library's float32 gemm at 1 thread, called through ctypes on row-major buffers:
    C = op(A) op(B). qkv runs its large float products in oneDNN and the rest in OpenBLAS
    (core/blas.cpp); bench/gemm_libraries.py compares the two at the step's shapes."""
    CALLS = 12  # about 0.1 s each at the peak: the best of them is the quietest moment

    def __init__(self, library):
        self.lib = ctypes.CDLL(library)

    def best_gflops(self, n=2048):
        """The peak: the fastest of CALLS n x n products (after one warm-up call)."""
        a, b, c = (matrix(n * n) for _ in range(3))
        self.gemm(False, False, n, n, n, a, b, c)  # warm-up: JIT or thread setup, page faults
        best = float("inf")
        for _ in range(self.CALLS):
            start = time.perf_counter()
            self.gemm(False, False, n, n, n, a, b, c)
            best = min(best, time.perf_counter() - start)
        return 2.0 * n ** 3 / best / 1e9


def matrix(size):
    """A float32 buffer with a sprinkling of ones (the values do not change the time)."""
    m = (ctypes.c_float * size)()
    for i in range(0, size, 97):
        m[i] = 1.0
    return m


class OpenBlasSgemm(Sgemm):
    ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

    def __init__(self, library):
        super().__init__(library)
        self.lib.openblas_set_num_threads(1)
        self.lib.openblas_get_config.restype = ctypes.c_char_p
        config = self.lib.openblas_get_config().decode()
        self.name = f"OpenBLAS's cblas_sgemm (`{library}`, {config})"

    def gemm(self, trans_a, trans_b, m, n, k, a, b, c):
        def op(trans):
            return self.TRANS if trans else self.NO_TRANS
        self.lib.cblas_sgemm(self.ROW_MAJOR, op(trans_a), op(trans_b), m, n, k,
                             ctypes.c_float(1.0), a, m if trans_a else k, b,
                             k if trans_b else n, ctypes.c_float(0.0), c, n)


class OneDnnSgemm(Sgemm):
    def __init__(self, library):
        # oneDNN threads through OpenMP, which reads OMP_NUM_THREADS once, when it loads.
        os.environ["OMP_NUM_THREADS"] = "1"
        super().__init__(library)
        self.lib.dnnl_version.restype = ctypes.POINTER(ctypes.c_int * 3)
        major, minor, patch = self.lib.dnnl_version().contents
        self.name = f"oneDNN's dnnl_sgemm (`{library}`, {major}.{minor}.{patch})"

    def gemm(self, trans_a, trans_b, m, n, k, a, b, c):
        def op(trans):
            return ctypes.c_char(b"T" if trans else b"N")
        dim = ctypes.c_int64
        status = self.lib.dnnl_sgemm(op(trans_a), op(trans_b), dim(m), dim(n), dim(k),
                                     ctypes.c_float(1.0), a, dim(m if trans_a else k), b,
                                     dim(k if trans_b else n), ctypes.c_float(0.0), c, dim(n))
        if status != 0:
            sys.exit(f"compare.py: dnnl_sgemm failed with status {status}")


def libraries(qkv):
    """Both sgemms, from the very libraries the qkv binary loads."""
    return (OpenBlasSgemm(linked_library(qkv, "openblas")),
            OneDnnSgemm(linked_library(qkv, "dnnl")))


def measure_peaks(sgemms, peaks, when):
    """Appends each library's best GFLOP/s now to peaks[name]."""
    for sgemm in sgemms:
        peaks.setdefault(sgemm.name, []).append(sgemm.best_gflops())
        print(f"{sgemm.name}: {peaks[sgemm.name][-1]:.1f} GFLOP/s {when} the runs", flush=True)


def cpu_model():
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_commit():
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                            "--untracked-files=no"], capture_output=True, text=True)
    commit = f"`{head.stdout.strip()}`"
    return commit + (" (the tree has uncommitted changes)" if dirty.stdout.strip() else "")


def median_run(runs):
    return Run(statistics.median(r.ms_per_step for r in runs),
               statistics.median(r.peak_rss_mb for r in runs))


def measure(args, sizes, have_torch):
    """Returns {(size name, threads): (qkv Run, torch Run or None)}, medians of args.runs."""
    cells = {}
    for name in sizes:
        size = SIZES[name]
        for threads in THREADS:
            qkv_runs, torch_runs = [], []
            for run in range(args.runs):
                qkv_runs.append(qkv_run(args.qkv, name, size, threads))
                line = f"{name:6} {threads} thread(s) run {run + 1}/{args.runs}: " \
                       f"qkv {qkv_runs[-1].ms_per_step:9.3f} ms/step"
                if have_torch:
                    torch_runs.append(torch_run(name, size, threads))
                    line += f", torch {torch_runs[-1].ms_per_step:9.3f} ms/step"
                print(line, flush=True)
            cells[(name, threads)] = (median_run(qkv_runs),
                                      median_run(torch_runs) if have_torch else None)
    return cells


COLUMNS = ("size", "threads", "qkv tok/s", "PyTorch tok/s", "ratio", "qkv ms/step",
           "PyTorch ms/step", "GFLOP/step", "qkv GFLOP/s (% peak)", "PyTorch GFLOP/s (% peak)",
           "qkv peak RSS MB", "PyTorch peak RSS MB")


def row(name, threads, qkv, torch, peak):
    """One table row; PyTorch's columns read n/a when it did not run."""
    size = SIZES[name]
    gflop = size.gemm_flops_per_step / 1e9

    def rate(run):
        return f"{size.tokens_per_step * 1000.0 / run.ms_per_step:,.0f}"

    def gflops(run):
        achieved = gflop * 1000.0 / run.ms_per_step
        return f"{achieved:.1f} ({100.0 * achieved / peak:.0f}%)"

    def torch_side(text):
        return text(torch) if torch else "n/a"

    return [name, str(threads), rate(qkv), torch_side(rate),
            torch_side(lambda t: f"{t.ms_per_step / qkv.ms_per_step:.2f}x"),
            f"{qkv.ms_per_step:.3f}", torch_side(lambda t: f"{t.ms_per_step:.3f}"),
            f"{gflop:.3f}", gflops(qkv), torch_side(gflops),
            f"{qkv.peak_rss_mb:.1f}", torch_side(lambda t: f"{t.peak_rss_mb:.1f}")]


def table(cells, peak):
    """The results as a Markdown table, one row per (size, threads)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for (name, threads), (qkv, torch) in cells.items():
        lines.append("| " + " | ".join(row(name, threads, qkv, torch, peak)) + " |")
    return "\n".join(lines)


def sizes_table(sizes):
    lines = ["| size | V | d | h | L | d_ff | T | B | parameters | qkv / PyTorch timed steps |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in sizes:
        s = SIZES[name]
        lines.append(f"| {name} | {s.vocab} | {s.d_model} | {s.heads} | {s.layers} | {s.d_ff} "
                     f"| {s.seq} | {s.batch} | {s.parameters:,} "
                     f"| {s.qkv_steps - s.log_every} / {s.torch_steps} |")
    return "\n".join(lines)


def report(context, sizes, cells):
    c = context
    peak_lines = "\n".join(f"  - {name}: {before:.1f} / {after:.1f}"
                           for name, (before, after) in c["peaks"].items())
    torch_line = (f"PyTorch {c['torch']} (Debian python3-torch under {TORCH_PYTHON}); threads: "
                  f"1 is 1 intra-op + 1 OpenBLAS thread, 2 is 1 intra-op + 2 OpenBLAS threads"
                  if c["torch"] else
                  f"PyTorch: absent (no `import torch` under {TORCH_PYTHON}; Debian's "
                  f"python3-torch provides it), so qkv alone")
    return f"""# qkv against PyTorch: training speed

Written by `bench/compare.py`; bench/README.md says what each column means.

- Date: {c['date']}; the full run took {c['duration']}
- Commit: {c['commit']}
- qkv: `{c['qkv']}` ({c['qkv_version']}); threads: `train.threads`
- {torch_line}
- CPU: {c['cpu']}, {os.cpu_count()} logical CPUs; load average (1, 5, 15 min)
  {c['load_before']} before the runs, {c['load_after']} after
- sgemm peak at 1 thread: **{c['peak']:.1f} GFLOP/s**, the fastest of {Sgemm.CALLS} calls on
  2048² float32 before the runs and {Sgemm.CALLS} after, in each library qkv's products run in
  (GFLOP/s before / after):
{peak_lines}
- Each cell: the median of {c['runs']} run(s) of each side, qkv and PyTorch alternating;
  ratio = qkv tokens/s / PyTorch tokens/s (above 1: qkv is faster)

{sizes_table(sizes)}

{table(cells, c['peak'])}
"""


def load_average():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def qkv_version(qkv):
    """The binary's --version and build time: the commit above is the tree's, and the binary
    may be older than it."""
    probe = subprocess.run([qkv, "--version"], capture_output=True, text=True)
    built = datetime.datetime.fromtimestamp(os.path.getmtime(qkv)).strftime("%Y-%m-%d %H:%M")
    return f"{probe.stdout.strip() or 'no --version'}, built {built}"


def publish(context, started, make_report, path):
    """Records the load after the runs and how long they took, then prints the report
    make_report() writes and saves it to path."""
    context["load_after"] = load_average()
    minutes, seconds = divmod(round(time.monotonic() - started), 60)
    context["duration"] = f"{minutes} min {seconds} s"
    text = make_report()
    print("\n" + text)
    with open(path, "w") as out:
        out.write(text)
    print(f"written to {path}")


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qkv", default=str(ROOT / "build" / "qkv"),
                        help="the qkv binary (default: build/qkv)")
    parser.add_argument("--runs", type=int, default=3, help="runs per cell and side (default 3)")
    parser.add_argument("--quick", action="store_true", help="only the tiny and small sizes")
    parser.add_argument("--sizes", default=None,
                        help=f"comma-separated sizes to run (of {', '.join(SIZES)})")
    parser.add_argument("--out", default=str(BENCH / "RESULTS.md"),
                        help="the report to write (default: bench/RESULTS.md)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be at least 1; got {args.runs}")
    if args.sizes and args.quick:
        parser.error("--quick and --sizes both choose sizes: give one")
    sizes = args.sizes.split(",") if args.sizes else list(QUICK_SIZES if args.quick else SIZES)
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"--sizes: unknown size {', '.join(unknown)} (known: {', '.join(SIZES)})")
    if not os.access(args.qkv, os.X_OK):
        parser.error(f"no qkv binary at {args.qkv} (build it, or pass --qkv)")
    if not os.access(TIME, os.X_OK):
        parser.error(f"no GNU time at {TIME} to measure peak RSS with (apt-get install time)")
    return args, sizes


def main():
    args, sizes = parse()
    started = time.monotonic()
    context = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
               "commit": git_commit(), "qkv": args.qkv, "qkv_version": qkv_version(args.qkv),
               "cpu": cpu_model(), "runs": args.runs, "load_before": load_average(),
               "torch": torch_version(), "peaks": {}}
    if context["torch"] is None:
        print(f"compare.py: PyTorch is absent (no `import torch` under {TORCH_PYTHON}; Debian's "
              f"python3-torch provides it): reporting qkv alone", flush=True)
    sgemms = libraries(args.qkv)
    measure_peaks(sgemms, context["peaks"], "before")
    cells = measure(args, sizes, context["torch"] is not None)
    measure_peaks(sgemms, context["peaks"], "after")
    context["peak"] = max(max(both) for both in context["peaks"].values())
    publish(context, started, lambda: report(context, sizes, cells), args.out)


if __name__ == "__main__":
    main()
