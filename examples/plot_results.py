"""Figures of results: F1 against the number of shots (the Cross-C paper's Figure 3), a t-SNE of mention vectors
coloured by type (its Figure 4), and the reliability curves of a calibrated model. Each PNG gets a JSON file next to
it (same name) with the plotted numbers; existing ones are replaced only with `--overwrite_output`.

    # one curve per system from finetune_fet.py's all_results.json files (any shots and sampling seeds); the mean
    # over seeds with a +-1 std band; published numbers (in %, `NAME=SHOTS:SCORE,...`) as dashed reference lines
    python examples/plot_results.py shots --output figures/shots.png --metric test_micro_f1 \\
        --system "FiveFine=outputs/fet/fivefine-k*-seed*/all_results.json" \\
        --system "Direct=outputs/fet/direct-k*-seed*/all_results.json" \\
        --reference "Some paper=2:40.0,4:45.5,8:50.1"  # placeholder values: take them from the paper's table

    # mention vectors of a saved model (any family of this package), coloured by coarse type
    python examples/plot_results.py tsne --model_dir outputs/demo --data_file examples/data/demo/test.jsonl \\
        --label_level coarse --output figures/tsne.png

    # share correct against score, before and after calibration, from a pretrain_ufet.py run's all_results.json
    python examples/plot_results.py reliability --results outputs/fivefine-minilm-ufet/all_results.json \\
        --output figures/reliability.png
"""

import argparse
import glob
import json
import logging
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure  # the object API renders with Agg and needs no display or pyplot state
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

import modeling_entity_typing  # noqa: F401  (registers the model families)
from modeling_entity_typing import load_mentions
from modeling_entity_typing.output_paths import refuse_to_replace
from modeling_entity_typing.training.training_args import SEED_RANGE, Range


logger = logging.getLogger(__name__)

LABEL_LEVELS = ("finest", "coarse", "first")
OTHER = "other"


# ------------------------------------------------------------------------------------------------------------- shots
def parse_named(spec: str, option: str) -> tuple[str, str]:
    """`NAME=VALUE` -> `(NAME, VALUE)`, with an error naming the option when the form is wrong."""
    name, sep, value = spec.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ValueError(f"{option} takes NAME=VALUE, e.g. {option} 'FiveFine=runs/*/all_results.json'; got {spec!r}.")
    return name.strip(), value.strip()


def parse_reference(spec: str) -> tuple[str, dict[int, float]]:
    """`NAME=2:47.1,4:52.6` -> `(NAME, {2: 47.1, 4: 52.6})`: published scores in % by number of shots."""
    name, points = parse_named(spec, "--reference")
    try:
        pairs = [point.split(":") for point in points.split(",")]
        return name, {int(shots): float(score) for shots, score in pairs}
    except ValueError:
        raise ValueError(
            f"--reference {name}: points must be SHOTS:SCORE pairs such as 2:47.1,4:52.6; got {points!r}."
        ) from None


def load_runs(pattern: str, metric: str) -> list[dict]:
    """One `{"file", "k_shot", "sample_seed", "value"}` per `all_results.json` matched by `pattern`."""
    files = sorted(glob.glob(pattern, recursive=True))
    if not files:
        raise FileNotFoundError(f"The glob {pattern!r} matches no file; quote it so the shell does not expand it.")
    runs = []
    for file in files:
        try:
            results = json.loads(Path(file).read_text())
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{file} is not valid JSON ({error}); expected finetune_fet.py's all_results.json."
            ) from None
        for key in (metric, "k_shot"):
            if key not in results:
                raise ValueError(
                    f"{file} has no {key!r} key (it has {sorted(k for k in results if k != 'history')}). Choose "
                    "--metric among its `<split>_<metric>` keys; `k_shot` is written by finetune_fet.py (re-run older "
                    "runs)."
                )
        if results["k_shot"] is None:
            raise ValueError(f"{file} has k_shot = null: it trained on the full training set, not on k shots.")
        value = results[metric]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(
                f"{file}: {metric} = {value!r} is not a score in [0, 1], as all_results.json scores are; choose "
                "a score key such as test_micro_f1."
            )
        runs.append(
            {"file": file, "k_shot": results["k_shot"], "sample_seed": results.get("sample_seed"), "value": value}
        )
    return runs


def aggregate(runs: list[dict]) -> list[dict]:
    """Mean and sample standard deviation (0 for one run) in % per number of shots, fewest shots first."""
    by_shots = defaultdict(list)
    for run in runs:
        by_shots[run["k_shot"]].append(100 * run["value"])
    return [
        {
            "k_shot": shots,
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values),
        }
        for shots, values in sorted(by_shots.items())
    ]


def plot_shots(
    curves: dict[str, list[dict]], references: dict[str, dict[int, float]], metric: str, title: str | None
) -> Figure:
    """Mean score against shots (log2 axis) with a +-std band per system; references as dashed lines."""
    figure = Figure(figsize=(6.4, 4.4), dpi=120)
    axes = figure.subplots()
    for name, points in curves.items():
        shots = [p["k_shot"] for p in points]
        mean, std = np.array([p["mean"] for p in points]), np.array([p["std"] for p in points])
        (line,) = axes.plot(shots, mean, marker="o", label=name)
        axes.fill_between(shots, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    for name, points in references.items():
        axes.plot(list(points), list(points.values()), linestyle="--", marker="x", label=name)
    all_shots = sorted(
        {p["k_shot"] for points in curves.values() for p in points} | {s for r in references.values() for s in r}
    )
    axes.set_xscale("log", base=2)
    axes.set_xticks(all_shots, [str(s) for s in all_shots])
    axes.minorticks_off()
    axes.set_xlabel("examples per type (shots)")
    axes.set_ylabel(f"{metric} (%)")
    axes.set_title(title or f"{metric} against the number of shots")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return figure


def shots_command(args: argparse.Namespace) -> dict:
    systems = [parse_named(spec, "--system") for spec in args.system]
    references = dict(parse_reference(spec) for spec in args.reference)
    curves = {}
    for name, pattern in systems:
        curves[name] = aggregate(load_runs(pattern, args.metric))
        logger.info(
            f"{name}: "
            + ", ".join(f"{p['k_shot']}-shot {p['mean']:.2f}±{p['std']:.2f} (n={p['n']})" for p in curves[name])
        )
    figure = plot_shots(curves, references, args.metric, args.title)
    summary = {"metric": args.metric, "unit": "%", "systems": curves, "references": references}
    return save(figure, summary, args.output)


# -------------------------------------------------------------------------------------------------------------- tsne
def label_at_level(labels: list[str], level: str) -> str:
    """The label that colours a mention: its finest (deepest `/` path, first on ties), that path's first component
    (`/person/artist` -> `/person`), or the record's first label (flat label sets such as UFET)."""
    if not labels:
        return "(no label)"
    if level == "first":
        return labels[0]
    finest = max(labels, key=lambda label: label.strip("/").count("/"))  # max keeps the first of equals
    if level == "finest":
        return finest
    return "/" + finest.strip("/").split("/")[0] if finest.startswith("/") else finest.split("/")[0]


def colour_groups(names: list[str], max_types: int) -> tuple[list[str], list[str]]:
    """Each point's legend group (its type, or `other` outside the `max_types` most frequent) and the legend order."""
    kept = [name for name, _ in Counter(names).most_common(max_types)]
    groups = [name if name in kept else OTHER for name in names]
    return groups, kept + ([OTHER] if OTHER in groups and OTHER not in kept else [])


def embed(model, tokenizer, mentions: list[tuple[str, int, int]], batch_size: int) -> np.ndarray:
    """Mention vectors `(n, hidden)` through the interface both families share (`get_mention_encoder`,
    `embed_mentions`), so the plot works for any model of this package."""
    encoder = model.get_mention_encoder(tokenizer)
    vectors = []
    for begin in tqdm(range(0, len(mentions), batch_size), desc="mention vectors", unit="batch"):
        encoded = encoder.encode_batch(mentions[begin : begin + batch_size])
        # Right padding whatever the tokenizer's default: mention positions count from the start of each row.
        padded = tokenizer.pad(
            [{"input_ids": e.input_ids} for e in encoded], padding_side="right", return_tensors="pt"
        )
        positions = torch.tensor([e.mention_position for e in encoded])
        with torch.no_grad():
            batch = model.embed_mentions(
                padded["input_ids"].to(model.device),
                padded["attention_mask"].to(model.device),
                positions.to(model.device),
            )
        vectors.append(batch.float().cpu().numpy())
    return np.concatenate(vectors)


def tsne_points(vectors: np.ndarray, perplexity: float, seed: int, threads: int = 1) -> np.ndarray:
    """2-D t-SNE coordinates; perplexity is lowered when there are too few points for it (it must be < n).

    `threads` caps the OpenMP threads of the Barnes-Hut gradient: with the cores busy, two threads made 500 points
    take 43 s instead of 7 s on a shared 2-core machine (the threads spin-wait for each other at every iteration).
    """
    if len(vectors) < 3:
        raise ValueError(f"t-SNE needs at least 3 mentions, got {len(vectors)}; use a larger --data_file.")
    usable = min(perplexity, (len(vectors) - 1) / 3)
    if usable < perplexity:
        logger.warning(f"--perplexity {perplexity} is too high for {len(vectors)} mentions; using {usable:.1f}.")
    with threadpool_limits(limits=threads, user_api="openmp"):
        return TSNE(n_components=2, perplexity=usable, init="pca", random_state=seed).fit_transform(vectors)


def plot_tsne(points: np.ndarray, groups: list[str], legend: list[str], title: str) -> Figure:
    """Scatter of the points, one colour per legend group (`other` in grey, drawn first, underneath)."""
    figure = Figure(figsize=(7.5, 5.5), dpi=120)
    axes = figure.subplots()
    palette = colormaps["tab10" if len(legend) <= 10 else "tab20"]
    groups_array = np.array(groups)
    for name in sorted(legend, key=lambda name: name != OTHER):
        selected = groups_array == name
        colour = "0.8" if name == OTHER else palette(legend.index(name) % palette.N)
        axes.scatter(points[selected, 0], points[selected, 1], s=14, color=colour, label=f"{name} ({selected.sum()})")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(title)
    axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small", frameon=False)
    figure.tight_layout()
    return figure


def tsne_command(args: argparse.Namespace) -> dict:
    for option, path in (("--model_dir", Path(args.model_dir) / "config.json"), ("--data_file", Path(args.data_file))):
        if not path.is_file():
            raise FileNotFoundError(f"{option}: no {path}; pass a saved model folder and a mention file.")
    model = AutoModel.from_pretrained(args.model_dir).to(args.device).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    data = load_mentions(args.data_file)
    if len(data) > args.max_mentions:
        data = data.shuffle(seed=args.seed).select(range(args.max_mentions))
    mentions = list(zip(data["text"], data["start"], data["end"]))
    names = [label_at_level(labels, args.label_level) for labels in data["labels"]]
    groups, legend = colour_groups(names, args.max_types)
    points = tsne_points(embed(model, tokenizer, mentions, args.batch_size), args.perplexity, args.seed, args.threads)
    title = (
        args.title
        or f"t-SNE of {len(mentions)} mention vectors, {args.label_level} types ({Path(args.model_dir).name})"
    )
    figure = plot_tsne(points, groups, legend, title)
    summary = {
        "model_dir": args.model_dir,
        "data_file": args.data_file,
        "label_level": args.label_level,
        "points": [
            {"x": float(x), "y": float(y), "label": name, "group": group, "mention": text[start:end]}
            for (x, y), name, group, (text, start, end) in zip(points, names, groups, mentions)
        ],
    }
    return save(figure, summary, args.output)


# ------------------------------------------------------------------------------------------------------ reliability
def plot_reliability(calibration: dict, title: str | None) -> Figure:
    """Share correct against mean score per bin, one panel per split, before and after calibration."""
    splits = calibration["splits"]
    figure = Figure(figsize=(4.2 * len(splits), 4.2), dpi=120)
    for axes, (split, scores) in zip(np.atleast_1d(figure.subplots(1, len(splits))), splits.items()):
        axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
        for when in ("before", "after"):
            points = [point for point in scores[when]["reliability"] if point["count"]]
            axes.plot([point["mean_probability"] for point in points], [point["accuracy"] for point in points],
                      marker="o", label=f"{when} (ECE {scores[when]['ece']:.3f})")  # fmt: skip
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
        axes.set_xlabel(f"score (each mention's {calibration['top_k']} best types)")
        axes.set_ylabel("share correct")
        axes.set_title(split)
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left")
    figure.suptitle(title or "Reliability before and after calibration")
    figure.tight_layout()
    return figure


def reliability_command(args: argparse.Namespace) -> dict:
    path = Path(args.results)
    if not path.is_file():
        raise FileNotFoundError(f"--results: no {path}; pass the all_results.json of a pretrain_ufet.py run.")
    calibration = json.loads(path.read_text()).get("calibration")
    if not calibration:
        raise ValueError(f"{path} holds no calibration: the run was made with --calibrate false or before it existed.")
    return save(plot_reliability(calibration, args.title), {"results": str(path), **calibration}, args.output)


# ----------------------------------------------------------------------------------------------------------- common
def save(figure: Figure, summary: dict, output: Path) -> dict:
    """Write the PNG and, next to it, the plotted numbers as JSON."""
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output)
    output.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    logger.info(f"Wrote {output} and {output.with_suffix('.json')}")
    return summary


def build_parser() -> argparse.ArgumentParser:
    """The commands' arguments; each number's `type=` refuses a value outside its range (`Range.parser`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    shots = commands.add_parser("shots", help="Score against the number of shots, one curve per system.")
    shots.add_argument("--system", action="append", required=True, help="NAME=GLOB of all_results.json files.")
    shots.add_argument("--metric", default="test_micro_f1", help="A key of all_results.json (a fraction).")
    shots.add_argument("--reference", action="append", default=[], help="NAME=SHOTS:SCORE,... published scores in %%.")
    shots.add_argument("--title")
    shots.add_argument("--output", type=Path, required=True, help="The PNG; the numbers go to the same name .json.")
    tsne = commands.add_parser("tsne", help="t-SNE of mention vectors coloured by type.")
    tsne.add_argument("--model_dir", required=True, help="A saved model folder (model and tokenizer).")
    tsne.add_argument("--data_file", required=True, help="Mentions in any format `load_mentions` reads.")
    tsne.add_argument(
        "--max_mentions",
        type=Range(ge=3, note="t-SNE needs 3 points").parser(int),
        default=500,
        help="A seeded random sample when the file has more.",
    )
    tsne.add_argument("--label_level", choices=LABEL_LEVELS, default="finest")
    tsne.add_argument(
        "--max_types",
        type=Range(ge=1).parser(int),
        default=10,
        help="Colours for the most frequent types; others grey.",
    )
    # Lowered to what the number of mentions allows (`tsne_points`); scikit-learn refuses 0 and below.
    tsne.add_argument("--perplexity", type=Range(gt=0).parser(float), default=30.0)
    tsne.add_argument("--seed", type=SEED_RANGE.parser(int), default=0)
    tsne.add_argument("--batch_size", type=Range(ge=1).parser(int), default=32)
    tsne.add_argument(
        "--threads",
        type=Range(ge=1).parser(int),
        default=1,
        help="OpenMP threads for t-SNE (more only on idle cores).",
    )
    tsne.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    tsne.add_argument("--title")
    tsne.add_argument("--output", type=Path, required=True, help="The PNG; the points go to the same name .json.")
    reliability = commands.add_parser("reliability", help="Reliability curves before and after calibration.")
    reliability.add_argument("--results", required=True, help="all_results.json of a pretrain_ufet.py run.")
    reliability.add_argument("--title")
    reliability.add_argument("--output", type=Path, required=True, help="The PNG; the numbers go to the same .json.")
    for command in (shots, tsne, reliability):
        command.add_argument("--overwrite_output", action="store_true", help="Replace an existing PNG and its .json.")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    # Before any run or model is read: an existing figure, or its numbers, is replaced only when asked.
    refuse_to_replace([args.output, args.output.with_suffix(".json")], args.overwrite_output, "--overwrite_output")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    commands = {"shots": shots_command, "tsne": tsne_command, "reliability": reliability_command}
    return commands[args.command](args)


if __name__ == "__main__":
    main(sys.argv[1:])
