#!/usr/bin/python3
"""Reference PyTorch transformer + training loop, used as a performance /
convergence anchor for qkv (bench/compare.py runs it beside `qkv train bench/tiny.yaml`).
The model is qkv's reference architecture (docs/DESIGN.md), layer for layer, so the two do the
same arithmetic per step. Needs Debian's python3-torch; qkv itself never does.

Model (pre-LN decoder, float32):
  h = tok_emb[x] + pos_emb[0..T-1]
  for each block:
      a = LN1(h); q,k,v = Wq a, Wk a, Wv a          (nn.Linear with bias)
      att = softmax(mask(q k^T / sqrt(dh))) v       (explicit matmuls, causal)
      h = h + Wo att
      f = LN2(h); h = h + W2 GELU(W1 f)
  logits = Whead LN_f(h)
  loss = mean cross-entropy over all B*T positions   (or --loss-on answer)
  optimizer: Adam(lr=1e-3)

Copy task (seq = T = 2n, or 2n + 1 with EOS as qkv's copy task makes it):
  full = [x1..xn, SEP, x1..xn]  (length 2n+1), x_i uniform in [0, V-2], SEP=V-1
  odd T: full = [x1..xn, SEP, x1..xn, EOS]  (length 2n+2), x_i in [0, V-3], EOS=V-2
  --symbols N draws x_i from [0, N-1] instead (qkv's copy data has V-3: it reserves PAD)
  input = full[:-1], target = full[1:]
  the targets after SEP (the copy, and EOS) are what accuracy is measured on.

Usage example:
  /usr/bin/python3 torch_ref.py --vocab 16 --d-model 32 --heads 2 --layers 1 \
      --d-ff 128 --seq 16 --batch 32 --steps 200 --threads 1 --task copy --eval
Prints one JSON line.
"""
import argparse
import json
import os
import resource
import sys
import time


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--vocab", type=int, default=16)
    p.add_argument("--d-model", type=int, default=32)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--d-ff", type=int, default=128)
    p.add_argument("--seq", type=int, default=16)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=100,
                   help="timed training steps (after --warmup untimed steps)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op (OpenMP) threads")
    p.add_argument("--blas-threads", type=int, default=None,
                   help="OpenBLAS threads (default: same as --threads)")
    p.add_argument("--task", choices=["copy"], default="copy")
    p.add_argument("--symbols", type=int, default=None,
                   help="copy prompts draw from this many ids, 0..N-1 (default: every id "
                        "below EOS, or below SEP for an even --seq)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--loss-on", choices=["all", "answer"], default="all",
                   help="positions contributing to the loss")
    p.add_argument("--gelu", choices=["erf", "tanh"], default="erf")
    p.add_argument("--eval", action="store_true",
                   help="report copy accuracy on fresh samples at the end")
    p.add_argument("--eval-samples", type=int, default=2048)
    p.add_argument("--target-acc", type=float, default=None,
                   help="convergence mode: stop as soon as token accuracy on a "
                        "held-out fresh batch reaches this value")
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--max-seconds", type=float, default=480.0)
    return p.parse_args()


args = parse()
# Thread env must be set before torch / OpenBLAS are loaded.
if args.blas_threads is None:
    args.blas_threads = args.threads
os.environ["OMP_NUM_THREADS"] = str(args.threads)
os.environ["MKL_NUM_THREADS"] = str(args.threads)
os.environ["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)

import math  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass
torch.manual_seed(args.seed)


class Attention(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        assert d % h == 0
        self.h, self.dh = h, d // h
        self.wq = nn.Linear(d, d)
        self.wk = nn.Linear(d, d)
        self.wv = nn.Linear(d, d)
        self.wo = nn.Linear(d, d)

    def forward(self, x, mask):
        B, T, D = x.shape
        q = self.wq(x).view(B, T, self.h, self.dh).transpose(1, 2)  # B h T dh
        k = self.wk(x).view(B, T, self.h, self.dh).transpose(1, 2)
        v = self.wv(x).view(B, T, self.h, self.dh).transpose(1, 2)
        s = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.dh))
        s = s.masked_fill(mask, float("-inf"))
        p = torch.softmax(s, dim=-1)
        o = torch.matmul(p, v)  # B h T dh
        o = o.transpose(1, 2).reshape(B, T, D)
        return self.wo(o)


class Block(nn.Module):
    def __init__(self, d, h, dff, gelu):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.att = Attention(d, h)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, dff)
        self.fc2 = nn.Linear(dff, d)
        self.act = nn.GELU(approximate="tanh" if gelu == "tanh" else "none")

    def forward(self, x, mask):
        x = x + self.att(self.ln1(x), mask)
        x = x + self.fc2(self.act(self.fc1(self.ln2(x))))
        return x


class TinyTransformer(nn.Module):
    def __init__(self, V, d, h, L, dff, T, gelu):
        super().__init__()
        self.tok = nn.Embedding(V, d)
        self.pos = nn.Embedding(T, d)
        self.blocks = nn.ModuleList([Block(d, h, dff, gelu) for _ in range(L)])
        self.lnf = nn.LayerNorm(d)
        self.head = nn.Linear(d, V)
        # causal mask: True where attention is NOT allowed (j > i)
        self.register_buffer(
            "mask", torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1))

    def forward(self, idx):
        B, T = idx.shape
        x = self.tok(idx) + self.pos.weight[:T].unsqueeze(0)
        m = self.mask[:T, :T]
        for b in self.blocks:
            x = b(x, m)
        return self.head(self.lnf(x))


def prompt_symbols(T, V):
    """How many ids a prompt draws from: --symbols, or every id below the markers."""
    available = V - 2 if T % 2 == 1 else V - 1
    if args.symbols is None:
        return available
    if not 1 <= args.symbols <= available:
        sys.exit(f"torch_ref.py: --symbols {args.symbols} must be in [1, {available}] "
                 f"for --vocab {V} and --seq {T} (the ids above are SEP{', EOS' if T % 2 else ''})")
    return args.symbols


def copy_batch(B, T, V, gen=None):
    """Inputs and targets (B, T). An odd T ends every answer with EOS, as qkv's copy data
    does (bench/*.yaml: T = 2p + 1), so both sides train on the same shapes."""
    n = T // 2
    sep, eos = V - 1, V - 2
    with_eos = T % 2 == 1
    x = torch.randint(0, prompt_symbols(T, V), (B, n), generator=gen)
    parts = [x, torch.full((B, 1), sep, dtype=torch.long), x]
    if with_eos:
        parts.append(torch.full((B, 1), eos, dtype=torch.long))
    full = torch.cat(parts, dim=1)
    return full[:, :-1].contiguous(), full[:, 1:].contiguous()


@torch.no_grad()
def copy_accuracy(model, T, V, samples, gen, bs=256):
    model.eval()
    n = T // 2
    correct = total = seq_ok = nseq = 0
    done = 0
    while done < samples:
        b = min(bs, samples - done)
        inp, tgt = copy_batch(b, T, V, gen)
        pred = model(inp).argmax(-1)
        ok = (pred[:, n:] == tgt[:, n:])
        correct += ok.sum().item()
        total += ok.numel()
        seq_ok += ok.all(dim=1).sum().item()
        nseq += b
        done += b
    model.train()
    return correct / total, seq_ok / nseq


def main():
    V, d, h, L, dff, T, B = (args.vocab, args.d_model, args.heads, args.layers,
                             args.d_ff, args.seq, args.batch)
    model = TinyTransformer(V, d, h, L, dff, T, args.gelu)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    n = T // 2

    params = sum(p.numel() for p in model.parameters())
    emb_params = model.tok.weight.numel() + model.pos.weight.numel()
    # parameters that take part in matmuls (Linear weights, incl. the head)
    mm_params = sum(m.weight.numel() for m in model.modules()
                    if isinstance(m, nn.Linear))
    # FLOPs per trained token: 6*N_mm (fwd 2N + bwd 4N) + attention
    # (QK^T and PV: 2*T*d each fwd, x3 for fwd+bwd => 12*T*d per layer; the
    # causal mask is applied to a full TxT score matrix, so full T is used).
    flops_per_token = 6 * mm_params + 12 * L * T * d

    def train_step(inp, tgt):
        logits = model(inp)
        if args.loss_on == "answer":
            loss = F.cross_entropy(logits[:, n:].reshape(-1, V),
                                   tgt[:, n:].reshape(-1))
        else:
            loss = F.cross_entropy(logits.reshape(-1, V), tgt.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    out = {
        "torch": torch.__version__, "threads": args.threads,
        "torch_threads": torch.get_num_threads(),
        "blas_threads": args.blas_threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "vocab": V, "d_model": d, "heads": h, "layers": L, "d_ff": dff,
        "seq": T, "batch": B, "seed": args.seed, "loss_on": args.loss_on, "gelu": args.gelu,
        "params": params, "params_non_embedding": params - emb_params,
        "params_matmul": mm_params, "flops_per_token": flops_per_token,
    }

    if args.target_acc is None:
        # ---- throughput mode ----
        for _ in range(args.warmup):
            inp, tgt = copy_batch(B, T, V)
            train_step(inp, tgt)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            inp, tgt = copy_batch(B, T, V)
            loss = train_step(inp, tgt)
        final_loss = loss.item()
        el = time.perf_counter() - t0
        toks = B * T * args.steps
        out.update({
            "steps": args.steps, "warmup": args.warmup,
            "elapsed_s": round(el, 4),
            "ms_per_step": round(1000 * el / args.steps, 4),
            "tokens_per_s": round(toks / el, 1),
            "gflops": round(flops_per_token * toks / el / 1e9, 3),
            "final_loss": round(final_loss, 5),
        })
    else:
        # ---- convergence mode: time-to-accuracy ----
        egen = torch.Generator().manual_seed(12345)
        held = copy_batch(512, T, V, egen)
        step = 0
        train_s = 0.0
        t_wall = time.perf_counter()
        reached = None
        hist = []
        while True:
            t0 = time.perf_counter()
            for _ in range(args.eval_every):
                inp, tgt = copy_batch(B, T, V)
                loss = train_step(inp, tgt)
                step += 1
            train_s += time.perf_counter() - t0
            with torch.no_grad():
                model.eval()
                pred = model(held[0]).argmax(-1)
                model.train()
                acc = (pred[:, n:] == held[1][:, n:]).float().mean().item()
            hist.append((step, round(train_s, 2), round(loss.item(), 4),
                         round(acc, 4)))
            if acc >= args.target_acc:
                reached = step
                break
            if time.perf_counter() - t_wall > args.max_seconds:
                break
        out.update({
            "target_acc": args.target_acc, "eval_every": args.eval_every,
            "reached": reached is not None, "steps_to_target": step,
            "train_seconds": round(train_s, 3),
            "wall_seconds": round(time.perf_counter() - t_wall, 3),
            "tokens_seen": step * B * T,
            "final_loss": round(loss.item(), 5),
            "history": hist[:: max(1, len(hist) // 20)] + [hist[-1]],
        })

    if args.eval:
        acc, sacc = copy_accuracy(model, T, V, args.eval_samples,
                                  torch.Generator().manual_seed(777))
        out["eval_token_acc"] = round(acc, 5)
        out["eval_seq_acc"] = round(sacc, 5)
    out["peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
