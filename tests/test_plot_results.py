"""examples/plot_results.py: the shots figure from synthetic all_results.json files and a t-SNE of a tiny model."""

import importlib.util
import json
import statistics
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from tiny import FET_ROWS, make_tiny_crossc_model, make_tiny_tokenizer, write_mentions


plot_results_path = Path(__file__).resolve().parents[1] / "examples" / "plot_results.py"
spec = importlib.util.spec_from_file_location("plot_results", plot_results_path)
plot_results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot_results)

SHOTS = (1, 2, 4, 8)
SEEDS = (0, 1, 2)


def score(system: int, shots: int, seed: int) -> float:
    """A made-up but irregular score, so a wrong grouping or average cannot give the right mean by chance."""
    return round(0.2 + 0.1 * system + 0.05 * np.log2(shots) + 0.013 * seed * (1 + shots % 3), 6)


@pytest.fixture
def runs(tmp_path):
    """all_results.json files: 2 systems x 4 shot counts x 3 sampling seeds, in finetune_fet.py's layout."""
    for system in (0, 1):
        for shots in SHOTS:
            for seed in SEEDS:
                folder = tmp_path / f"system{system}" / f"k{shots}-seed{seed}"
                folder.mkdir(parents=True)
                results = {
                    "test_micro_f1": score(system, shots, seed),
                    "test_macro_f1": score(system, shots, seed) / 2,
                    "k_shot": shots,
                    "sample_seed": seed,
                    "model_type": "fivefine",
                    "history": [{"step": 10}],
                }
                (folder / "all_results.json").write_text(json.dumps(results))
    return tmp_path


def assert_real_image(path: Path) -> None:
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    assert image[..., :3].std() > 0.05
    assert len(np.unique(image[..., :3].reshape(-1, 3), axis=0)) > 20  # lines, bands, text: not a blank canvas


def test_shots_figure_and_aggregated_points(runs, tmp_path):
    output = tmp_path / "figures" / "shots.png"
    summary = plot_results.main(
        [
            "shots",
            "--system",
            f"A={runs}/system0/*/all_results.json",
            "--system",
            f"B={runs}/system1/**/all_results.json",
            "--reference",
            "Paper=2:47.1,4:52.6",
            "--output",
            str(output),
        ]
    )
    assert_real_image(output)
    written = json.loads(output.with_suffix(".json").read_text())
    assert written == json.loads(json.dumps(summary))
    assert written["references"] == {"Paper": {"2": 47.1, "4": 52.6}}
    for name, system in (("A", 0), ("B", 1)):
        assert [point["k_shot"] for point in written["systems"][name]] == list(SHOTS)
        for point in written["systems"][name]:
            values = [100 * score(system, point["k_shot"], seed) for seed in SEEDS]
            assert point["n"] == 3
            assert point["mean"] == pytest.approx(sum(values) / 3)
            assert point["std"] == pytest.approx(statistics.stdev(values))


def test_other_metric_and_single_run(runs, tmp_path):
    summary = plot_results.main(
        [
            "shots",
            "--system",
            f"A={runs}/system0/k4-seed1/all_results.json",
            "--metric",
            "test_macro_f1",
            "--output",
            str(tmp_path / "one.png"),
        ]
    )
    assert summary["systems"]["A"] == [{"k_shot": 4, "mean": pytest.approx(50 * score(0, 4, 1)), "std": 0.0, "n": 1}]


def test_shots_errors_name_the_problem(runs, tmp_path):
    output = ["--output", str(tmp_path / "x.png")]
    with pytest.raises(FileNotFoundError, match="matches no file"):
        plot_results.main(["shots", "--system", f"A={tmp_path}/nothing/*.json", *output])
    with pytest.raises(ValueError, match="--system takes NAME=VALUE"):
        plot_results.main(["shots", "--system", f"{runs}/system0/*/all_results.json", *output])
    with pytest.raises(ValueError, match=r"all_results.json has no 'test_f1' key"):
        plot_results.main(
            ["shots", "--system", f"A={runs}/system0/*/all_results.json", "--metric", "test_f1", *output]
        )
    with pytest.raises(ValueError, match="not a score in"):
        plot_results.main(["shots", "--system", f"A={runs}/system0/*/all_results.json", "--metric", "k_shot", *output])
    with pytest.raises(ValueError, match="SHOTS:SCORE"):
        plot_results.main(
            ["shots", "--system", f"A={runs}/system0/*/all_results.json", "--reference", "P=2-47", *output]
        )
    broken = runs / "system0" / "k1-seed0" / "all_results.json"
    broken.write_text(json.dumps({"test_micro_f1": 0.3, "model_type": "fivefine"}))
    with pytest.raises(ValueError, match=f"{broken}.*has no 'k_shot' key"):
        plot_results.main(["shots", "--system", f"A={runs}/system0/*/all_results.json", *output])
    broken.write_text(json.dumps({"test_micro_f1": 0.3, "k_shot": None}))
    with pytest.raises(ValueError, match="k_shot = null"):
        plot_results.main(["shots", "--system", f"A={runs}/system0/*/all_results.json", *output])


@pytest.mark.parametrize(
    "labels, level, expected",
    [
        (["/person", "/person/artist"], "finest", "/person/artist"),
        (["/person", "/person/artist"], "coarse", "/person"),
        (["/person", "/person/artist"], "first", "/person"),
        (["/organization/company/news", "/location"], "coarse", "/organization"),
        (["politician", "person"], "finest", "politician"),
        (["politician", "person"], "coarse", "politician"),
        ([], "finest", "(no label)"),
    ],
)
def test_label_levels(labels, level, expected):
    assert plot_results.label_at_level(labels, level) == expected


def test_colour_groups_keep_the_most_frequent_types():
    groups, legend = plot_results.colour_groups(["a", "b", "a", "c", "b", "a", "d"], max_types=2)
    assert legend == ["a", "b", "other"]
    assert groups == ["a", "b", "a", "other", "b", "a", "other"]


def test_tsne_of_a_saved_tiny_model(tiny_model, tiny_tokenizer, tmp_path):
    tiny_model.save_pretrained(tmp_path / "model")
    tiny_tokenizer.save_pretrained(tmp_path / "model")
    # 48 distinct texts (16 rows x 3 endings; 8 each of 4 person, location, organization types), 30 of them used.
    endings = ("", " and it is big", " and it is nice")
    rows = [(text[:-2] + ending + " .", mention, labels) for ending in endings for text, mention, labels in FET_ROWS]
    data_file = write_mentions(tmp_path / "mentions.jsonl", rows[:30])
    output = tmp_path / "tsne.png"
    argv = ["tsne", "--model_dir", str(tmp_path / "model"), "--data_file", data_file, "--output", str(output)]
    summary = plot_results.main([*argv, "--label_level", "coarse", "--batch_size", "8"])
    assert_real_image(output)
    points = json.loads(output.with_suffix(".json").read_text())["points"]
    assert len(points) == 30 == len(summary["points"])
    assert {point["label"] for point in points} == {"/person", "/location", "/organization"}
    coordinates = np.array([[point["x"], point["y"]] for point in points])
    assert np.isfinite(coordinates).all() and coordinates.std(axis=0).min() > 0
    assert len({(round(x, 3), round(y, 3)) for x, y in coordinates}) > 20  # distinct texts, distinct points
    # --max_mentions samples (over the first figure: --overwrite_output); a missing model folder is named.
    with pytest.raises(FileExistsError, match=f"{output} exists.*--overwrite_output"):
        plot_results.main(argv)
    summary = plot_results.main([*argv, "--max_mentions", "12", "--label_level", "finest", "--overwrite_output"])
    assert len(summary["points"]) == 12
    assert {point["label"] for point in summary["points"]} <= {labels[1] for _, _, labels in FET_ROWS}
    with pytest.raises(FileNotFoundError, match="--model_dir"):
        plot_results.main(
            [
                "tsne",
                "--model_dir",
                str(tmp_path / "none"),
                "--data_file",
                data_file,
                "--output",
                str(tmp_path / "none.png"),
            ]
        )


def test_tsne_works_for_a_crossc_model(tmp_path):
    tokenizer = make_tiny_tokenizer()
    make_tiny_crossc_model(tokenizer).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    data_file = write_mentions(tmp_path / "mentions.jsonl", FET_ROWS)
    output = tmp_path / "tsne.png"
    argv = ["tsne", "--model_dir", str(tmp_path / "model"), "--data_file", data_file, "--output", str(output)]
    summary = plot_results.main([*argv, "--label_level", "first"])
    assert_real_image(output)
    assert len(summary["points"]) == len(FET_ROWS)
    assert {point["label"] for point in summary["points"]} == {"/person", "/location", "/organization"}


def test_reliability_figure_from_a_runs_calibration(tmp_path):
    import torch

    from modeling_entity_typing.calibration import PlattScaling, calibration_report

    logits = torch.linspace(-4, 4, 40).reshape(4, 10)
    gold = torch.rand(4, 10, generator=torch.Generator().manual_seed(0)) < 0.4
    reports = {when: calibration_report(logits, gold, scaling) for when, scaling in
               (("before", PlattScaling()), ("after", PlattScaling(0.5, -1.0)))}  # fmt: skip
    calibration = {"slope": 0.5, "offset": -1.0, "fitted_on": "dev", "top_k": 10, "splits": {"dev": reports}}
    results = tmp_path / "all_results.json"
    results.write_text(json.dumps({"calibration": calibration}))
    output = tmp_path / "reliability.png"
    summary = plot_results.main(["reliability", "--results", str(results), "--output", str(output)])
    assert_real_image(output)
    assert summary["splits"]["dev"]["after"]["ece"] == reports["after"]["ece"]
    assert json.loads(output.with_suffix(".json").read_text())["top_k"] == 10
    results.write_text("{}")
    with pytest.raises(ValueError, match="holds no calibration"):
        plot_results.main(["reliability", "--results", str(results), "--output", str(tmp_path / "other.png")])
