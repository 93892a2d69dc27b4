#!/usr/bin/python3
"""Read a qkv checkpoint from Python, and with PyTorch rebuild its model.

A qkv checkpoint is a .safetensors file: an 8-byte little-endian header length, a JSON
header (each tensor's dtype, shape and byte range, and "__metadata__", a map of strings),
then the raw little-endian tensor bytes. This script reads it with the standard library
only: the tensors, qkv's CRC-32 checksums ("qkv.crc32"), and the metadata that a reader
needs to use the weights:

  format_version  2 (1: files from before the EOS token, without a vocabulary)
  vocabulary      JSON list: the token names in id order ("PAD", "SEP", "EOS", then the
                  task's own), so token ids need no convention
  config          the run's resolved config (YAML, every default written)
  step, best_seq_acc, ...

If PyTorch is importable it builds the reference model of qkv's docs/DESIGN.md (the
architecture of bench/torch_ref.py: token plus learned positional embedding, pre-LN blocks
x + Attn(LN(x)), x + FFN(LN(x)) with an exact-GELU FFN, a final LayerNorm and an untied
head; a bias on every Linear), its modules named as qkv names its parameters, so the
checkpoint's weights load with load_state_dict as they are. With --data FILE (qkv's data
format: prompt tokens TAB answer tokens, one example per line) it computes the loss
`qkv eval CHECKPOINT --data FILE` reports: the mean cross-entropy over answer positions
(the answer's tokens and the EOS after them), each position predicted from the true
prefix. With --qkv BINARY it also runs that command and compares the two losses.

  /usr/bin/python3 examples/python/load_checkpoint.py runs/copy/best.safetensors
  /usr/bin/python3 examples/python/load_checkpoint.py runs/copy/best.safetensors \\
      --data examples.tsv --qkv build/qkv

Exit codes: 0 done (the losses agree); 1 the losses differ or qkv eval failed; 2 a file
that cannot be read, damaged, or a model the reference architecture does not cover.
"""
import argparse
import json
import math
import struct
import subprocess
import sys
import zlib
from array import array

DTYPES = {"F32": ("f", 4), "F64": ("d", 8)}
PAD, SEP, EOS = 0, 1, 2


class CheckpointError(Exception):
    pass


def read_safetensors(path):
    """(tensors, metadata): tensors by name as (dtype, shape, flat list of floats)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise CheckpointError(f"{path}: {len(data)} bytes, too short for a safetensors file")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        raise CheckpointError(f"{path}: the header claims {header_len} bytes; the file has "
                              f"{len(data) - 8} after the length")
    try:
        header = json.loads(data[8:8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: the header is not JSON ({e})")
    metadata = header.pop("__metadata__", {})
    body = data[8 + header_len:]
    checksums = json.loads(metadata.get("qkv.crc32", "{}"))
    tensors = {}
    for name, entry in header.items():
        if entry["dtype"] not in DTYPES:
            raise CheckpointError(f"{path}: tensor '{name}' has dtype {entry['dtype']}; "
                                  f"this reader knows {', '.join(DTYPES)}")
        code, size = DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        raw = body[begin:end]
        count = math.prod(entry["shape"])
        if len(raw) != count * size:
            raise CheckpointError(f"{path}: tensor '{name}' has {len(raw)} bytes; its shape "
                                  f"{entry['shape']} needs {count * size}")
        if name in checksums:
            # qkv's checksum covers "<dtype> <shape>" and then the bytes.
            descriptor = f"{entry['dtype']} [{', '.join(map(str, entry['shape']))}]".encode()
            crc = f"{zlib.crc32(raw, zlib.crc32(descriptor)):08x}"
            if crc != checksums[name]:
                raise CheckpointError(f"{path}: tensor '{name}' does not match its checksum "
                                      f"(stored {checksums[name]}, computed {crc})")
        values = array(code, raw)
        if sys.byteorder == "big":
            values.byteswap()
        tensors[name] = (entry["dtype"], entry["shape"], values)
    return tensors, metadata


def read_resolved_config(text):
    """The block-style YAML that qkv writes as a run's resolved config, as nested dicts of
    strings. Not a YAML parser: enough for qkv's own writer (two-space indents, `key: value`
    and `key:` opening a mapping; flow lists stay strings)."""
    root = {}
    stack = [(-1, root)]
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        key, _, value = line.strip().partition(":")
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if value.strip():
            parent[key] = value.strip()
        else:
            parent[key] = {}
            stack.append((indent, parent[key]))
    return root


def read_examples(path, vocabulary):
    """(prompt ids, answer ids) per example of a qkv data file."""
    ids = {name: i for i, name in enumerate(vocabulary)}
    examples = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            prompt, tab, answer = line.partition("\t")
            if not tab:
                raise CheckpointError(f"{path}:{number}: expected 'prompt<TAB>answer'")
            sides = []
            for side in (prompt, answer):
                words = side.split()
                unknown = [w for w in words if ids.get(w, PAD) <= EOS]
                if unknown or not words:
                    raise CheckpointError(f"{path}:{number}: unknown or reserved token(s) "
                                          f"{unknown} (vocabulary: {' '.join(vocabulary[3:])})")
                sides.append([ids[w] for w in words])
            examples.append(tuple(sides))
    return examples


# The model: what the reference architecture leaves no choice about must be what the
# checkpoint's config says.
REFERENCE = {
    ("model", "norm_placement"): "pre",
    ("model", "positional", "type"): "learned_positions",
    ("model", "norm", "type"): "layer_norm",
    ("model", "attention", "type"): "multi_head_attention",
    ("model", "attention", "projections"): "learned",
    ("model", "attention", "wq"): "learned",
    ("model", "attention", "wk"): "learned",
    ("model", "attention", "wv"): "learned",
    ("model", "attention", "wo"): "learned",
    ("model", "attention", "causal"): "true",
    ("model", "ffn", "type"): "feed_forward",
    ("model", "ffn", "activation"): "gelu",
}


def check_reference(config):
    for path, expected in REFERENCE.items():
        node = config
        for key in path:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if node != expected:
            raise CheckpointError(f"{'.'.join(path)} is {node or 'missing'}; the reference "
                                  f"model builds only {expected}")


def build_reference_model(torch, config, vocab, max_len):
    nn = torch.nn
    model_cfg = config["model"]
    d, heads = int(model_cfg["d_model"]), int(model_cfg["heads"])
    layers, hidden = int(model_cfg["layers"]), int(model_cfg["ffn"]["hidden"])
    eps = float(model_cfg["norm"]["eps"])

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.wq, self.wk = nn.Linear(d, d), nn.Linear(d, d)
            self.wv, self.wo = nn.Linear(d, d), nn.Linear(d, d)

        def forward(self, x):
            B, T, _ = x.shape
            dh = d // heads

            def split(t):  # (B, T, C) -> (B, H, T, dh)
                return t.view(B, T, heads, dh).transpose(1, 2)

            q, k, v = split(self.wq(x)), split(self.wk(x)), split(self.wv(x))
            scores = q @ k.transpose(-2, -1) / math.sqrt(dh)
            future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
            p = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
            return self.wo((p @ v).transpose(1, 2).reshape(B, T, d))

    class FeedForward(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)

        def forward(self, x):
            return self.fc2(torch.nn.functional.gelu(self.fc1(x)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.attn = nn.LayerNorm(d, eps=eps), Attention()
            self.ln2, self.ffn = nn.LayerNorm(d, eps=eps), FeedForward()

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            return x + self.ffn(self.ln2(x))

    class Transformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok_emb = nn.Embedding(vocab, d)
            self.pos_emb = nn.Embedding(max_len, d)
            self.blocks = nn.ModuleList([Block() for _ in range(layers)])
            self.ln_f = nn.LayerNorm(d, eps=eps)
            self.head = nn.Linear(d, vocab)

        def forward(self, ids):  # (B, T) -> (B, T, V)
            x = self.tok_emb(ids) + self.pos_emb.weight[: ids.shape[1]].unsqueeze(0)
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln_f(x))

    return Transformer()


def reference_loss(torch, model, examples):
    """Mean cross-entropy over answer positions (answer and EOS), teacher-forced."""
    total, tokens = 0.0, 0
    with torch.no_grad():
        for prompt, answer in examples:
            sequence = prompt + [SEP] + answer + [EOS]
            inputs = torch.tensor([sequence[:-1]])
            targets = torch.tensor(sequence[len(prompt) + 1:])  # from the SEP position on
            logits = model(inputs)[0, len(prompt):]
            total += torch.nn.functional.cross_entropy(logits.double(), targets,
                                                       reduction="sum").item()
            tokens += len(targets)
    return total / tokens


def qkv_eval_loss(binary, checkpoint, data):
    run = subprocess.run([binary, "eval", checkpoint, "--data", data], capture_output=True,
                         text=True)
    if run.returncode != 0:
        raise RuntimeError(f"qkv eval failed ({run.returncode}): {run.stderr.strip()}")
    return json.loads(run.stdout.strip().splitlines()[-1])["loss"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data", help="compute `qkv eval --data FILE`'s loss (needs PyTorch)")
    parser.add_argument("--qkv", help="the qkv binary: run its eval and compare the losses")
    args = parser.parse_args()

    try:
        tensors, metadata = read_safetensors(args.checkpoint)
        if metadata.get("format") != "qkv-checkpoint":
            raise CheckpointError(f"{args.checkpoint}: not a qkv checkpoint (metadata "
                                  f"'format' is {metadata.get('format')!r})")
        version = int(metadata["format_version"])
        if "vocabulary" not in metadata:
            raise CheckpointError(f"{args.checkpoint}: format version {version} has no "
                                  f"vocabulary (written before the EOS token; retrain it)")
        vocabulary = json.loads(metadata["vocabulary"])
        config = read_resolved_config(metadata["config"])
    except (CheckpointError, OSError, KeyError, ValueError) as e:
        print(f"load_checkpoint.py: error: {e}", file=sys.stderr)
        return 2

    weights = {n: t for n, t in tensors.items() if not n.startswith("optim.")}
    parameters = sum(len(values) for _, _, values in weights.values())
    print(f"checkpoint {args.checkpoint}: format version {version}, step {metadata['step']}, "
          f"best seq_acc {metadata.get('best_seq_acc')}")
    print(f"task {config['task']['type']}; vocabulary ({len(vocabulary)}): {' '.join(vocabulary)}")
    model_cfg = config["model"]
    print(f"model: d_model {model_cfg['d_model']}, heads {model_cfg['heads']}, layers "
          f"{model_cfg['layers']}; {len(weights)} weight tensors, {parameters} parameters")

    try:
        import torch
    except ImportError:
        if args.data:
            print("PyTorch is not importable: the loss on --data needs it")
        return 0

    try:
        check_reference(config)
    except CheckpointError as e:
        print(f"load_checkpoint.py: error: {e}", file=sys.stderr)
        return 2
    max_len = weights["pos_emb.weight"][1][0]
    model = build_reference_model(torch, config, len(vocabulary), max_len)
    state = {name: torch.tensor(values, dtype=torch.float64 if dtype == "F64" else torch.float32)
             .reshape(shape) for name, (dtype, shape, values) in weights.items()}
    model.load_state_dict(state)  # strict: every name and shape must match
    model.eval()
    print(f"pytorch: the reference model loaded all {len(state)} tensors")
    if not args.data:
        return 0

    try:
        examples = read_examples(args.data, vocabulary)
    except (CheckpointError, OSError) as e:
        print(f"load_checkpoint.py: error: {e}", file=sys.stderr)
        return 2
    loss = reference_loss(torch, model, examples)
    print(f"pytorch loss on {args.data} ({len(examples)} examples): {loss:.8f}")
    if not args.qkv:
        return 0
    try:
        qkv_loss = qkv_eval_loss(args.qkv, args.checkpoint, args.data)
    except RuntimeError as e:
        print(f"load_checkpoint.py: error: {e}", file=sys.stderr)
        return 1
    print(f"qkv eval loss:  {qkv_loss:.8f}")
    # Both are float32 models: their sums differ in order, not in value.
    agree = abs(loss - qkv_loss) <= 1e-4 * max(1.0, abs(qkv_loss))
    print("the losses agree" if agree else f"the losses differ by {abs(loss - qkv_loss):.3g}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
