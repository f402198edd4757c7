"""OntoNotes 5-shot on FiveFine's own splits: one method, splits 0-4, mean and spread of test Acc / Mi-F1 / Ma-F1.

Each split is a separate process (`examples/finetune_fet.py`, or `benchmarks/bert_direct_fet.py` for the
BERT-Direct baseline), run with the same schedule; the splits' `all_results.json` are aggregated.

    python benchmarks/bench_fet_fewshot.py --method fivefine --output benchmarks/results/onto_fivefine_plain.json
    python benchmarks/bench_fet_fewshot.py --method fivefine --model_name_or_path outputs/bench/ufet-crowd-seed1 \\
        --output benchmarks/results/onto_fivefine_ufet.json
    python benchmarks/bench_fet_fewshot.py --method direct --output benchmarks/results/onto_direct.json
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import DEFAULT_DATA_DIR, machine


ROOT = Path(__file__).resolve().parents[1]
METRICS = {"test_strict_accuracy": "Acc", "test_micro_f1": "Mi-F1", "test_macro_f1": "Ma-F1"}
DEV_METRICS = {"dev_strict_accuracy": "dev Acc", "dev_micro_f1": "dev Mi-F1", "dev_macro_f1": "dev Ma-F1"}
# The schedule is the training script's own defaults (its recipe) unless --train_args overrides part of it.


def split_command(args, split: int, output_dir: Path) -> list[str]:
    onto = Path(args.data_dir) / "fivefine" / "alifet" / "ontonotes"
    data = [
        "--train_file", str(onto / f"onto_train_fewshot5_{split}.json"),
        "--validation_file", str(onto / f"onto_dev_fewshot5_{split}.json"),
        "--test_file", "" if args.dev_only else str(onto / "onto_test_ali.json"),
        "--labels_file", str(onto / "onto_type_vocab_ali.txt"),
        "--drop_other_label", "--output_dir", str(output_dir), "--seed", str(args.seed),
        "--overwrite_output_dir",  # the benchmark's own run folder: a re-run replaces it on purpose
    ]  # fmt: skip
    model = ["--model_name_or_path", args.model_name_or_path] if args.model_name_or_path else []
    if args.method == "direct":
        return [sys.executable, str(ROOT / "benchmarks" / "bert_direct_fet.py"), *data, *model, *args.train_args]
    fivefine = ["--k_shot", "0", "--phrase_table", "ontonotes", "--right_context", args.right_context]
    if args.single_path_train:
        fivefine.append("--single_path_train")
    return [sys.executable, str(ROOT / "examples" / "finetune_fet.py"), *data, *fivefine, *model, *args.train_args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=["fivefine", "direct"], required=True)
    parser.add_argument("--model_name_or_path", default=None, help="Encoder or FiveFine checkpoint (default MiniLM).")
    parser.add_argument("--splits", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--seed", type=int, default=7771)
    parser.add_argument("--right_context", choices=["tokens", "text"], default="tokens")
    parser.add_argument(
        "--single_path_train", action="store_true", help="Train on finest labels only (FiveFine: BBN)."
    )
    parser.add_argument("--data_dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--runs_dir", default=str(ROOT / "outputs" / "bench"))
    parser.add_argument("--dev_only", action="store_true", help="No test set: for choosing hyperparameters.")
    parser.add_argument("--name", default=None, help="Run folder prefix (default: method and model).")
    parser.add_argument("--output", required=True, help="JSON file for the aggregate.")
    args, args.train_args = parser.parse_known_args()  # the rest goes to the training script as is

    name = args.name or f"onto5-{args.method}-{Path(args.model_name_or_path or 'minilm').name}"
    name += "-single" if args.single_path_train else ""
    metrics = DEV_METRICS if args.dev_only else {**METRICS, **DEV_METRICS}
    runs = []
    for split in args.splits:
        output_dir = Path(args.runs_dir) / f"{name}-split{split}"
        started = time.perf_counter()
        subprocess.run(split_command(args, split, output_dir), check=True, stdout=subprocess.DEVNULL)
        result = json.loads((output_dir / "all_results.json").read_text())
        seconds = round(time.perf_counter() - started, 1)
        runs.append({"split": split, "seconds": seconds, "best_step": result["best_step"],
                     **{key: result[key] for key in metrics}})  # fmt: skip
        print(f"split {split}: " + ", ".join(f"{label} {100 * result[key]:.2f}" for key, label in metrics.items()))
    aggregate = {
        label: {
            "mean": round(100 * statistics.mean(run[key] for run in runs), 2),
            "std": round(100 * statistics.stdev(run[key] for run in runs), 2) if len(runs) > 1 else 0.0,
        }
        for key, label in metrics.items()
    }
    report = {"method": args.method, "model": args.model_name_or_path or "all-MiniLM-L6-v2",
              "right_context": args.right_context,
              "single_path_train": args.single_path_train, "train_args": args.train_args, "aggregate": aggregate,
              "runs": runs, "machine": machine()}  # fmt: skip
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    print(" | ".join(f"{label} {v['mean']:.2f} ± {v['std']:.2f}" for label, v in aggregate.items()))


if __name__ == "__main__":
    main()
