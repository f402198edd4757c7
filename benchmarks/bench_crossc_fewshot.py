"""Cross-C on Open Entity as the paper uses it: UFET crowd data, labels restricted to the 9 general + 121 fine types
(the first 130 lines of `types.txt`), k-shot fine-tuning, test loose micro F1 (the reference code's metric).

Two systems on the same encoder, schedule and k-shot samples:
  (a) F-T: `MBertForContrastiveTyping.from_encoder` fine-tuned directly (`finetune_fet.py --model_family crossc`);
  (b) Cross-C: the same model after contrastive pretraining on entity-pair groups mined from the Open Entity
      train + dev sentences' Wikidata links (`build_contrastive_data.py`, rule `pair`), which do not overlap test.
Every (shots, seed) is a separate process; the runs' `all_results.json` are aggregated (mean and std over seeds).

    python benchmarks/bench_crossc_fewshot.py --output benchmarks/results/crossc_fewshot_320steps.json

Each run also reports what its saved model predicts on test (labels per mention, distinct types; through the
pipeline, checked equal to the run's F1), and the report has the score of predicting the most frequent type for
every mention: the level below which a row has learned nothing beyond the label prior.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from common import DEFAULT_DATA_DIR, machine


ROOT = Path(__file__).resolve().parents[1]
PAPER = {"F-T": {2: 47.1, 4: 52.6, 8: 57.6, 16: 60.3}, "Cross-C": {2: 50.8, 4: 55.9, 8: 59.8, 16: 60.8}}
# Scaled down for 2 CPU cores; the same for both systems. Dev: one example per type of the dev file, for selection.
FINETUNE = [
    "--decision", "threshold", "--metric_for_best_model", "micro_f1", "--validation_k_shot", "1",
    "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "64", "--learning_rate", "1e-4",
    "--head_learning_rate", "1e-2",
    "--max_steps", "80", "--eval_steps", "20", "--min_steps", "40", "--patience", "40", "--max_seq_length", "64",
]  # fmt: skip
PRETRAIN = [
    "--seeds_per_batch", "8", "--positives_per_seed", "2", "--learning_rate", "2e-5", "--max_steps", "150",
    "--eval_steps", "25", "--max_seq_length", "64", "--per_device_eval_batch_size", "64",
]  # fmt: skip


def schedule_steps(max_steps: int) -> list[str]:
    """FINETUNE's budget scaled to `max_steps` (eval every quarter, no early stop before half); later flags win."""
    return ["--max_steps", str(max_steps), "--eval_steps", str(max_steps // 4), "--min_steps", str(max_steps // 2),
            "--patience", str(max_steps // 2)]  # fmt: skip


def run(command: list[str], log: Path) -> float:
    started = time.perf_counter()
    with open(log, "w") as handle:
        subprocess.run(command, check=True, stdout=handle, stderr=subprocess.STDOUT)
    return round(time.perf_counter() - started, 1)


def pretrain(args, runs_dir: Path) -> tuple[Path, dict]:
    """Mine entity-pair groups from the Open Entity train + dev sentences, then pretrain contrastively."""
    oe = Path(args.data_dir) / "open_entity_ernie"
    examples = runs_dir / "distant_pairs.jsonl"
    build_seconds = run(
        [sys.executable, str(ROOT / "examples" / "build_contrastive_data.py"), "--corpus", str(oe / "train.json"),
         str(oe / "dev.json"), "--rules", "pair", "--output", str(examples)],
        runs_dir / "build_contrastive_data.log",
    )  # fmt: skip
    output_dir = runs_dir / "crossc-pretrained"
    pretrain_seconds = run(
        [sys.executable, str(ROOT / "examples" / "pretrain_contrastive.py"), "--train_file", str(examples),
         "--output_dir", str(output_dir), "--seed", str(args.seed), *PRETRAIN],
        runs_dir / "pretrain_contrastive.log",
    )  # fmt: skip
    report = json.loads(Path(str(examples).replace(".jsonl", ".report.json")).read_text())
    summary = json.loads((output_dir / "all_results.json").read_text())
    return output_dir, {
        "mining_report": report,
        "build_seconds": build_seconds,
        "pretrain_seconds": pretrain_seconds,
        "pretrain_best_step": summary["best_step"],
        "pretrain_history": summary["history"],
    }


def finetune(args, system: str, model: str | None, shots: int, seed: int, runs_dir: Path, labels: Path, test) -> dict:
    ufet = Path(args.data_dir) / "ufet"
    output_dir = runs_dir / f"{system}-{shots}shot-seed{seed}"
    command = [
        sys.executable, str(ROOT / "examples" / "finetune_fet.py"), "--model_family", "crossc",
        "--train_file", str(ufet / "train.json"), "--validation_file", str(ufet / "dev.json"),
        "--test_file", str(ufet / "test.json"), "--labels_file", str(labels), "--restrict_eval_labels",
        "--k_shot", str(shots), "--sample_seed", str(seed), "--seed", str(seed), "--output_dir", str(output_dir),
        *(["--model_name_or_path", model] if model else []), *FINETUNE, *schedule_steps(args.finetune_steps),
    ]  # fmt: skip
    finished = output_dir / "all_results.json"
    if args.reuse_runs and finished.exists() and _same_run(json.loads(finished.read_text()), shots, seed):
        seconds = None  # finished by an earlier invocation; its log holds the timing
    else:
        seconds = run(command, runs_dir / f"{system}-{shots}shot-seed{seed}.log")
    result = json.loads(finished.read_text())
    kept = ["test_micro_f1", "test_micro_precision", "test_micro_recall", "test_macro_f1", "test_strict_accuracy",
            "test_num_mentions", "train_examples", "best_step"]  # fmt: skip
    return {"system": system, "shots": shots, "seed": seed, "seconds": seconds, **{key: result[key] for key in kept},
            "test_predictions": prediction_profile(output_dir, test)}  # fmt: skip


def restricted_split(args, labels: Path, split: str):
    """A UFET crowd split with its gold restricted to the 130 types, as `finetune_fet.py --restrict_eval_labels`."""
    from modeling_entity_typing.data.mention_data import load_mentions, restrict_to_labels

    path = Path(args.data_dir) / "ufet" / f"{split}.json"
    return restrict_to_labels(load_mentions(path), labels.read_text().split(), split)[0]


def most_frequent_type_baseline(train, test) -> dict:
    """The reference every row must beat: the train file's most frequent type predicted for every test mention,
    scored with the same restriction and metric as the runs (a label prior, no model)."""
    from modeling_entity_typing.evaluation.scoring import typing_scores

    top_type = Counter(label for record in train["labels"] for label in record).most_common(1)[0][0]
    gold = list(test["labels"])
    scores = typing_scores([[top_type]] * len(gold), gold, hierarchical=True)
    return {"type": top_type, **{f"test_{key}": value for key, value in scores.items()}}


def prediction_profile(model_dir: Path, test) -> dict:
    """What a run's saved (selected) model predicts on test, through the pipeline with its saved decision rule:
    how many labels per mention and how many distinct types at all; shows a collapse onto a few coarse types."""
    import transformers

    from modeling_entity_typing.evaluation.scoring import typing_scores

    typer = transformers.pipeline("entity-typing", model=str(model_dir))
    inputs = [
        {"text": text, "span": (start, end)} for text, start, end in zip(test["text"], test["start"], test["end"])
    ]
    predicted = [[label["label"] for label in output["labels"]] for output in typer(inputs, batch_size=64)]
    sets = Counter(tuple(sorted(labels)) for labels in predicted)
    return {
        "mean_labels_per_mention": round(statistics.mean(len(labels) for labels in predicted), 3),
        "distinct_types_predicted": len({label for labels in predicted for label in labels}),
        "most_common_predictions": [[list(labels), count] for labels, count in sets.most_common(3)],
        # must equal the run's own test_micro_f1: the saved model and the pipeline reproduce what was scored
        "micro_f1_through_pipeline": typing_scores(predicted, list(test["labels"]), hierarchical=True)["micro_f1"],
    }


def _same_run(result: dict, shots: int, seed: int) -> bool:
    """Whether a finished run's results are for this (shots, seed); the folder name already says which system."""
    return result.get("k_shot") == shots and result.get("sample_seed") == seed


def aggregate(runs: list[dict]) -> dict:
    table = {}
    for system in dict.fromkeys(run["system"] for run in runs):
        for shots in sorted({run["shots"] for run in runs if run["system"] == system}):
            scores = [100 * run["test_micro_f1"] for run in runs if run["system"] == system and run["shots"] == shots]
            table.setdefault(system, {})[shots] = {
                "mean": round(statistics.mean(scores), 2),
                "std": round(statistics.stdev(scores), 2) if len(scores) > 1 else 0.0,
                "runs": len(scores),
            }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--finetune_steps", type=int, default=320, help="Fine-tuning steps per run (80 stops at the label prior)."
    )
    parser.add_argument("--seed", type=int, default=7771, help="Seed of the contrastive pretraining.")
    parser.add_argument("--pretrained", default=None, help="Reuse a Cross-C pretrained checkpoint.")
    parser.add_argument("--data_dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--runs_dir", default=str(ROOT / "outputs" / "bench" / "crossc"))
    parser.add_argument("--output", required=True, help="JSON file for the aggregate.")
    parser.add_argument(
        "--reuse_runs",
        action="store_true",
        help="Keep the finished runs of an earlier, interrupted grid in --runs_dir (same --pretrained only).",
    )
    args = parser.parse_args()

    runs_dir = Path(args.runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    labels = runs_dir / "types130.txt"  # the 9 general + 121 fine types: the first 130 lines of UFET's types.txt
    labels.write_text("\n".join((Path(args.data_dir) / "ufet" / "types.txt").read_text().split("\n")[:130]) + "\n")
    if args.pretrained:
        pretrained, pretraining = Path(args.pretrained), {"reused": args.pretrained}
    else:
        pretrained, pretraining = pretrain(args, runs_dir)
        print(f"pretrained in {pretraining['pretrain_seconds']} s; best step {pretraining['pretrain_best_step']}")
    test = restricted_split(args, labels, "test")
    runs = []
    for seed in args.seeds:  # seed-major: an interrupted grid still has every shot count for the first seeds
        for shots in args.shots:
            for system, model in (("F-T", None), ("Cross-C", str(pretrained))):
                runs.append(finetune(args, system, model, shots, seed, runs_dir, labels, test))
                profile = runs[-1]["test_predictions"]
                print(
                    f"{system} {shots}-shot seed {seed}: loose micro F1 {100 * runs[-1]['test_micro_f1']:.2f}; "
                    f"{profile['mean_labels_per_mention']} labels per mention, "
                    f"{profile['distinct_types_predicted']} distinct types"
                )
    table = aggregate(runs)
    baseline = most_frequent_type_baseline(restricted_split(args, labels, "train"), test)
    report = {"encoder": "all-MiniLM-L6-v2", "finetune_schedule": FINETUNE + schedule_steps(args.finetune_steps),
              "pretrain_schedule": PRETRAIN,
              "pretraining": pretraining, "aggregate": table, "most_frequent_type_baseline": baseline,
              "paper": PAPER, "runs": runs, "machine": machine()}  # fmt: skip
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    print(f"'{baseline['type']}' for every mention: loose micro F1 {100 * baseline['test_micro_f1']:.2f}")
    for system, row in table.items():
        print(system + ": " + " | ".join(f"{s}-shot {v['mean']:.2f} ± {v['std']:.2f}" for s, v in row.items()))


if __name__ == "__main__":
    main()
