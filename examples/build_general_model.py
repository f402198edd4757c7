"""Build the general FiveFine checkpoint in one command (`make model`) and write it as a Hub-ready folder.

The recipe: UFET crowd training in the encoder type space, every step against all 10,331 types through the type bank
(`pretrain_ufet.py`), the schedule length chosen on UFET dev, the decision threshold and the calibration fitted on
UFET dev; then the zero-shot table across label schemas (`benchmarks/bench_zero_shot_schemas.py`) and the export
(`export_for_hub`: safetensors, tokenizer, remote code, and a card generated from the run's own results).

Each step resumes: a killed training continues from its newest checkpoint, and a step whose results are on disk is
reused (and said so). An existing `--output_dir` is refused before anything runs, unless `--overwrite_output_dir`.

    python examples/build_general_model.py                    # what `make model` runs: outputs/fivefine-minilm-ufet
    python examples/build_general_model.py --max_steps 200 --output_dir outputs/general-short
"""

import logging
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from transformers import HfArgumentParser, pipeline

import modeling_entity_typing  # noqa: F401  (registers the model and the pipeline)
from modeling_entity_typing.export.hub import export_for_hub
from modeling_entity_typing.export.model_card import ZeroShotTable
from modeling_entity_typing.output_paths import refuse_to_replace
from modeling_entity_typing.training.checkpoints import has_checkpoints
from modeling_entity_typing.training.training_args import SEED_RANGE, Range, check_ranges


logger = logging.getLogger("build_general_model")

HERE = Path(__file__).resolve().parent
PRETRAIN = HERE / "pretrain_ufet.py"
ZERO_SHOT_BENCHMARK = HERE.parent / "benchmarks" / "bench_zero_shot_schemas.py"
DEFAULT_DATA_DIR = HERE.parent.parent / "shared" / "data"


def shown(path: str | Path) -> str:
    """`path` relative to the working directory when it is below its parent (commands that cards and logs show stay
    free of one machine's absolute paths), else as given."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("../../") else str(path)


# What the general model is trained with (BENCHMARKS.md, "The general model"): encoder type space, type bank.
RECIPE = [
    "--type_space", "encoder", "--type_bank_refresh_steps", "50", "--mlm_loss_weight", "0", "--nwp_loss_weight", "0",
]  # fmt: skip
SMOKE_TEXT, SMOKE_SPAN = "Mark Twain wrote Huckleberry Finn in Hartford.", (0, 10)


@dataclass
class BuildArguments:
    """Where the model goes, what it is built from, and the schedule chosen on UFET dev."""

    output_dir: str = field(
        default="outputs/fivefine-minilm-ufet", metadata={"help": "The Hub-ready folder (safetensors, code, card)."}
    )
    work_dir: str | None = field(
        default=None,
        metadata={"help": "Training run, checkpoints and the zero-shot table; default: `<output_dir>-work`. Kept, "
                  "so that a rerun resumes or reuses each step."},
    )  # fmt: skip
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace an existing --output_dir."})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "The encoder to start from; default: the bundled all-MiniLM-L6-v2."}
    )
    data_dir: str = field(
        default=shown(DEFAULT_DATA_DIR), metadata={"help": "Folder with ufet/ (and the zero-shot table's data)."}
    )
    # UFET dev macro-F1 at steps 200 / 400 / 600 / 800 of an 800-step run: 38.90 / 40.30 / 40.58 / 39.93; the learning
    # rate is constant, so a 600-step run is that run's first 600 steps and ends on the model it selected.
    max_steps: Annotated[int, Range(ge=1)] = field(
        default=600, metadata={"help": "Training steps (batch 32); chosen on UFET dev (BENCHMARKS.md)."}
    )
    eval_steps: Annotated[int, Range(ge=1)] = field(
        default=200, metadata={"help": "Score UFET dev (and keep the best step) every N steps."}
    )
    checkpointing_steps: Annotated[int, Range(ge=50)] = field(
        default=100, metadata={"help": "Save a resumable checkpoint every N steps (a multiple of 50, the bank's)."}
    )
    learning_rate: Annotated[float, Range(gt=0)] = field(default=5e-5, metadata={"help": "Encoder learning rate."})
    head_learning_rate: Annotated[float, Range(gt=0)] = field(
        default=1e-2, metadata={"help": "Learning rate of the type scorer's scale and bias."}
    )
    per_device_train_batch_size: Annotated[int, Range(ge=1)] = field(default=32, metadata={"help": "Batch size."})
    seed: Annotated[int, SEED_RANGE] = field(default=1, metadata={"help": "Training seed."})
    threshold_groups: Annotated[list[int], Range(ge=1)] = field(
        default_factory=lambda: [9, 121],
        metadata={"help": "Sizes of the leading groups of types.txt with a decision threshold each, chosen on dev "
                  "(UFET: 9 general, 121 fine; the ultra-fine rest share one)."},
    )  # fmt: skip
    zero_shot: bool = field(
        default=True, metadata={"help": "Measure the zero-shot table across schemas for the card (~10 min)."}
    )
    zero_shot_limit: Annotated[int | None, Range(ge=1, note="unset: all")] = field(
        default=None, metadata={"help": "Score only the first N mentions of each zero-shot test set (smoke runs)."}
    )
    repo_id: str = field(
        default="modeling-entity-typing/fivefine-minilm-ufet", metadata={"help": "The Hub name the card uses."}
    )
    base_model: str | None = field(
        default="sentence-transformers/all-MiniLM-L6-v2",
        metadata={"help": "Hub id of the encoder, for the card (empty for a local encoder with no Hub id)."},
    )

    def __post_init__(self):
        check_ranges(self)
        if self.checkpointing_steps % 50:
            raise ValueError(
                "--checkpointing_steps must be a multiple of 50 (the type bank's refresh), got "
                f"{self.checkpointing_steps}."
            )
        self.base_model = self.base_model or None
        if self.work_dir is None:
            self.work_dir = f"{self.output_dir.rstrip('/')}-work"
        ufet = Path(self.data_dir, "ufet")
        missing = [
            name for name in ("train.json", "dev.json", "test.json", "types.txt") if not (ufet / name).is_file()
        ]
        if missing:
            raise FileNotFoundError(
                f"--data_dir: {ufet} lacks {', '.join(missing)}. The general model trains on UFET crowd (Choi et al., "
                "2018): pass --data_dir with a ufet/ folder holding train.json, dev.json, test.json and types.txt."
            )
        output = Path(self.output_dir)
        if output.resolve() == Path(self.work_dir).resolve():
            raise ValueError("--output_dir and --work_dir must differ: the export is written apart from the run.")
        # before hours of training, not after them
        refuse_to_replace([output] if output.exists() and any(output.iterdir()) else [], self.overwrite_output_dir,
                          "--overwrite_output_dir")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> BuildArguments:
    (args,) = HfArgumentParser(BuildArguments).parse_args_into_dataclasses(args=argv)
    return args


def train(args: BuildArguments, run_dir: Path) -> None:
    """`pretrain_ufet.py` with the recipe into `run_dir`, resumed from its newest checkpoint when it has one."""
    if (run_dir / "all_results.json").is_file():
        logger.info(f"Training: reusing the finished run in {run_dir} (delete it to train again).")
        return
    ufet = Path(args.data_dir, "ufet")
    command = [
        sys.executable, shown(PRETRAIN), "--train_file", str(ufet / "train.json"),
        "--validation_file", str(ufet / "dev.json"), "--test_file", str(ufet / "test.json"),
        "--types_file", str(ufet / "types.txt"), *RECIPE, "--output_dir", str(run_dir),
        "--threshold_groups", *map(str, args.threshold_groups),
        "--max_steps", str(args.max_steps), "--eval_steps", str(args.eval_steps),
        "--checkpointing_steps", str(args.checkpointing_steps), "--learning_rate", str(args.learning_rate),
        "--head_learning_rate", str(args.head_learning_rate), "--seed", str(args.seed),
        "--per_device_train_batch_size", str(args.per_device_train_batch_size),
    ]  # fmt: skip
    if args.model_name_or_path:
        command += ["--model_name_or_path", args.model_name_or_path]
    if has_checkpoints(run_dir):
        logger.info(f"Training: resuming {run_dir} from its newest checkpoint.")
        command += ["--resume_from_checkpoint", "latest"]
    elif run_dir.is_dir() and any(run_dir.iterdir()):  # this script's own run, stopped before its first checkpoint
        logger.info(f"Training: {run_dir} holds a run stopped before its first checkpoint; starting it again.")
        command += ["--overwrite_output_dir"]
    run(command)


def zero_shot_table(args: BuildArguments, run_dir: Path, table: Path) -> ZeroShotTable | None:
    """The zero-shot table of the trained model (measured once, then reused)."""
    if not args.zero_shot:
        return None
    if table.is_file():
        logger.info(f"Zero-shot table: reusing {table} (delete it to measure again).")
    else:
        command = [sys.executable, shown(ZERO_SHOT_BENCHMARK), "--model", str(run_dir), "--data_dir", args.data_dir,
                   "--output", str(table)]  # fmt: skip
        if args.model_name_or_path:
            command += ["--encoder", args.model_name_or_path]
        if args.zero_shot_limit:
            command += ["--limit", str(args.zero_shot_limit)]
        run(command)
    return ZeroShotTable.read(table)


def run(command: list[str]) -> None:
    logger.info("Running: " + shlex.join(command))
    subprocess.run(command, check=True)


def main(argv: list[str] | None = None) -> Path:
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    args = parse_args(argv)
    work = Path(args.work_dir)
    run_dir = work / "train"
    work.mkdir(parents=True, exist_ok=True)
    train(args, run_dir)
    table = zero_shot_table(args, run_dir, work / "zero_shot_schemas.json")
    folder = export_for_hub(
        run_dir,
        args.output_dir,
        args.repo_id,
        base_model=args.base_model,
        dataset_name="UFET crowd (Choi et al., 2018)",
        dataset_type="ufet",
        language="en",
        zero_shot=table,
        build_command=shlex.join(["python", "examples/build_general_model.py", *(argv or [])]),
        overwrite=args.overwrite_output_dir,
    )
    typer = pipeline("entity-typing", model=str(folder))
    labels = typer(SMOKE_TEXT, span=SMOKE_SPAN, top_k=5)["labels"]
    print(f"\nThe general model is in {folder}. {SMOKE_TEXT[slice(*SMOKE_SPAN)]!r} in {SMOKE_TEXT!r}:")
    print("  " + ", ".join(f"{item['label']} ({item['score']:.2f})" for item in labels))
    print(f'Use it: pipeline("entity-typing", model="{folder}")  (or `make app` to try it in a browser)')
    return folder


if __name__ == "__main__":
    main(sys.argv[1:])
