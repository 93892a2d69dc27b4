#!/usr/bin/env python3
"""README's "The answer" table: one row per attention variant, one column per task.

Reads the ablation.json that `qkv ablate` wrote in each sweep folder and prints a Markdown
table of the final held-out seq_acc (mean ± sd over seeds) and how many seeds reached the
sweep's target, followed by each sweep's budget and training time. Nothing is recomputed:
every figure is one of ablation.json's.

    for t in copy reverse sort agreement recall induction; do
      qkv ablate configs/ablations/$t.yaml --out runs/answer/$t
    done
    scripts/answer_table.py runs/answer/{copy,reverse,sort,agreement,recall,induction}
"""
import json
import pathlib
import sys


def load(folder):
    path = pathlib.Path(folder) / "ablation.json"
    try:
        return json.loads(path.read_text())
    except OSError as error:
        sys.exit(f"answer_table: cannot read {path}: {error.strerror} "
                 f"(run qkv ablate with --out {folder} first)")
    except json.JSONDecodeError as error:
        sys.exit(f"answer_table: {path} is not JSON: {error}")


def cell(row):
    acc = row["final_seq_acc"]
    sd = acc["sd"]
    spread = f" ± {sd:.2f}" if sd is not None else ""
    reached = row["steps_to_target"]
    return f"{acc['mean']:.2f}{spread} ({reached['reached']}/{reached['seeds']})"


def main(folders):
    if not folders:
        sys.exit(__doc__)
    sweeps = [load(folder) for folder in folders]
    variants = [row["variant"] for row in sweeps[0]["variants"]]
    for sweep in sweeps[1:]:
        if [row["variant"] for row in sweep["variants"]] != variants:
            sys.exit(f"answer_table: {sweep['name']} has other variants than "
                     f"{sweeps[0]['name']}: {[row['variant'] for row in sweep['variants']]}")
    print("| variant | " + " | ".join(sweep["name"] for sweep in sweeps) + " |")
    print("|---|" + "---:|" * len(sweeps))
    for index, variant in enumerate(variants):
        cells = [cell(sweep["variants"][index]) for sweep in sweeps]
        print(f"| `{variant}` | " + " | ".join(cells) + " |")
    print()
    for sweep in sweeps:
        seconds = sum(run["elapsed_s"] for row in sweep["variants"] for run in row["runs"])
        print(f"- {sweep['name']}: {sweep['steps']} steps per run, target {sweep['target']}, "
              f"{len(sweep['seeds'])} seeds, {seconds / 60:.1f} min of training")


if __name__ == "__main__":
    main(sys.argv[1:])
