#!/usr/bin/python3
"""OpenBLAS against oneDNN at the products of one training step, side by side.

qkv sends a float product of 512K multiply-adds or more to oneDNN's dnnl_sgemm and the rest
to OpenBLAS's cblas_sgemm (core/blas.cpp). This measures why: for each size of compare.py
it times every Linear's three products (forward Y = X Wᵀ, dX = dY W, dW = dYᵀ X, with
N = B*T token rows) and attention's two forward products for one block of 32 query rows of
one head, in both libraries at 1 thread, alternating calls so that machine noise hits both
alike. Each figure is the median over --rounds rounds of the time of one call, and the
buffers rotate over 8 sets so that, as in a step, the operands are not all in cache. The
attention rows, a few microseconds each, include ctypes' call overhead (about 1 us).

  bench/gemm_libraries.py [--qkv build/qkv] [--sizes tiny,small,medium] [--rounds 15]

A weight gradient dW = dYᵀ X whose C is taller than it is wide (d_out > d_in: the stacked
q, k, v and fc1) is slow in oneDNN as it stands, so qkv computes it as Cᵀ = Xᵀ dY, the
same Aᵀ B with m and n swapped, and adds that into C transposed. For those rows the table
also times oneDNN at the swapped product, the route qkv takes (the product alone: the
add into C is one more pass over it, about 2% of the product's time at medium).

The libraries are the ones the qkv binary loads (found with ldd), as compare.py's sgemm
peak uses. Prints a Markdown table; ratio = OpenBLAS time / oneDNN time (above 1: oneDNN is
faster).
"""
import argparse
import statistics
import time

from compare import SIZES, libraries, matrix

ONEDNN_MACS = 1 << 19  # core/blas.cpp's kOneDnnMacs
BUFFER_SETS = 8


def products(size):
    """(what, trans_a, trans_b, m, n, k) of one step's products at this size."""
    n, d = size.tokens_per_step, size.d_model
    linears = [("q, k, v", d, 3 * d), ("out", d, d), ("fc1", d, size.d_ff),
               ("fc2", size.d_ff, d), ("head", d, size.vocab)]
    out = []
    for name, d_in, d_out in linears:
        out += [(f"{name} forward", False, True, n, d_out, d_in),
                (f"{name} dX", False, False, n, d_in, d_out),
                (f"{name} dW", True, False, d_out, d_in, n)]
    dh = d // size.heads
    out += [("attention Q Kᵀ, one block", False, False, 32, size.seq, dh),
            ("attention P V, one block", False, False, 32, dh, size.seq)]
    return out


def route(product):
    """Which library core/blas.cpp sends the product to, and whether as its transpose."""
    _, trans_a, trans_b, m, n, k = product
    if m * n * k < ONEDNN_MACS:
        return "OpenBLAS"
    return "oneDNN, as Cᵀ" if trans_a and not trans_b and m > n else "oneDNN"


def swapped(product):
    """The transposed route's product: Cᵀ = Bᵀ A, m and n swapped."""
    what, trans_a, trans_b, m, n, k = product
    return what, trans_a, trans_b, n, m, k


def seconds_per_call(sgemms, product, rounds):
    """Median seconds of one call of each library, alternating between them."""
    _, trans_a, trans_b, m, n, k = product
    sets = [tuple(matrix(x) for x in (m * k, k * n, m * n)) for _ in range(BUFFER_SETS)]
    times = [[] for _ in sgemms]
    for sgemm in sgemms:  # warm-up: JIT, page faults
        sgemm.gemm(trans_a, trans_b, m, n, k, *sets[0])
    for r in range(rounds):
        for i, sgemm in enumerate(sgemms):
            a, b, c = sets[r % BUFFER_SETS]
            start = time.perf_counter()
            sgemm.gemm(trans_a, trans_b, m, n, k, a, b, c)
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qkv", default="build/qkv", help="the qkv binary (default build/qkv)")
    parser.add_argument("--sizes", default="tiny,small,medium", help="comma-separated sizes")
    parser.add_argument("--rounds", type=int, default=15, help="calls of each (default 15)")
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown size(s) {', '.join(unknown)}; known: {', '.join(SIZES)}")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    sgemms = libraries(args.qkv)
    for sgemm in sgemms:
        print(f"- {sgemm.name}")
    print("\n| size | product | m × n × k | OpenBLAS GFLOP/s | oneDNN GFLOP/s | ratio "
          "| oneDNN as Cᵀ GFLOP/s | qkv uses |")
    print("|---|---|---|---|---|---|---|---|")
    onednn_only = [s for s in sgemms if s.name.startswith("oneDNN")]
    for name in sizes:
        for product in products(SIZES[name]):
            what, _, _, m, n, k = product
            openblas, onednn = seconds_per_call(sgemms, product, args.rounds)
            flop = 2.0 * m * n * k
            uses = route(product)
            as_transpose = "–"
            if uses == "oneDNN, as Cᵀ":
                [seconds] = seconds_per_call(onednn_only, swapped(product), args.rounds)
                as_transpose = f"{flop / seconds / 1e9:.1f}"
            print(f"| {name} | {what} | {m} × {n} × {k} | {flop / openblas / 1e9:.1f} "
                  f"| {flop / onednn / 1e9:.1f} | {openblas / onednn:.2f} | {as_transpose} "
                  f"| {uses} |", flush=True)


if __name__ == "__main__":
    main()
