#!/usr/bin/python3
"""CTest's check of load_checkpoint.py on a checkpoint trained here by qkv.

  test_load_checkpoint.py stdlib QKV_BINARY WORK_DIR
      the standard-library reader (PyTorch hidden from the script): the summary names the
      vocabulary, and a damaged tensor is refused by its checksum
  test_load_checkpoint.py torch QKV_BINARY WORK_DIR
      the reference model reproduces `qkv eval --data`'s loss; exits 77 (CTest's
      SKIP_RETURN_CODE) when this python cannot import torch
"""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "load_checkpoint.py")
SKIP = 77

# A small copy model: a few hundred steps, so that the loss is small but not zero.
CONFIG = """name: python_reader
seed: 4
task: {type: copy, symbols: 6, min_len: 2, max_len: 4}
model: {d_model: 16, heads: 2, layers: 2, d_ff: 32}
optim: {type: adam, lr: 0.003}
train: {steps: 300, batch_size: 32, eval_every: 300, eval_samples: 64, threads: 1}
"""
# Copies, one reversal (which the model gets wrong) and a blank line.
DATA = "a b\ta b\nc d e\tc d e\n\nf a\ta f\nb b b b\tb b b b\n"


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    print("$", " ".join(command), f"-> {result.returncode}\n{result.stdout}{result.stderr}")
    return result


def expect(condition, what):
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(1)


def train(qkv, work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    config = os.path.join(work, "copy.yaml")
    with open(config, "w") as f:
        f.write(CONFIG)
    expect(run([qkv, "train", config, "--out", os.path.join(work, "run")]).returncode == 0,
           "qkv train succeeds")
    data = os.path.join(work, "examples.tsv")
    with open(data, "w") as f:
        f.write(DATA)
    return os.path.join(work, "run", "best.safetensors"), data


def without_torch(arguments):
    """load_checkpoint.py run where `import torch` fails."""
    code = ("import sys; sys.modules['torch'] = None; sys.argv = " + repr([SCRIPT] + arguments) +
            "; exec(compile(open(sys.argv[0]).read(), sys.argv[0], 'exec'))")
    return run([sys.executable, "-c", code])


def check_stdlib(qkv, work):
    checkpoint, data = train(qkv, work)
    summary = without_torch([checkpoint, "--data", data])
    expect(summary.returncode == 0, "the standard-library reader succeeds")
    expect("vocabulary (9): PAD SEP EOS a b c d e f" in summary.stdout, "the vocabulary")
    expect("d_model 16, heads 2, layers 2" in summary.stdout, "the model section")
    expect("the loss on --data needs it" in summary.stdout, "says what needs PyTorch")

    with open(checkpoint, "rb") as f:
        damaged = bytearray(f.read())
    damaged[-3] ^= 0x40  # a byte of the last tensor's data
    broken = os.path.join(work, "damaged.safetensors")
    with open(broken, "wb") as f:
        f.write(damaged)
    refused = without_torch([broken])
    expect(refused.returncode == 2, "a damaged file exits 2")
    expect("does not match its checksum" in refused.stderr, "names the checksum")

    not_one = os.path.join(work, "text.safetensors")
    with open(not_one, "w") as f:
        f.write("not a checkpoint")
    expect(without_torch([not_one]).returncode == 2, "a text file exits 2")


def check_torch(qkv, work):
    try:
        import torch  # noqa: F401
    except ImportError:
        print(f"{sys.executable} cannot import torch: skipped")
        sys.exit(SKIP)
    checkpoint, data = train(qkv, work)
    result = run([sys.executable, SCRIPT, checkpoint, "--data", data, "--qkv", qkv])
    expect(result.returncode == 0, "load_checkpoint.py succeeds and the losses agree")
    expect("the reference model loaded all" in result.stdout, "every tensor loaded")
    expect("pytorch loss on" in result.stdout and "qkv eval loss:" in result.stdout,
           "both losses printed")
    expect("the losses agree" in result.stdout, "the losses agree")


def main():
    part, qkv, work = sys.argv[1:4]
    {"stdlib": check_stdlib, "torch": check_torch}[part](os.path.abspath(qkv), work)
    print("ok")


if __name__ == "__main__":
    main()
