"""Model card of the Hub export: `README.md` rendered from the package's Jinja template, with the run's test scores.

The template ships as package data (`templates/model_card_template.md`, read through `importlib.resources`), so an
installed wheel renders cards without a checkout. Test scores become `model-index` metadata and, for a Hub dataset,
an `.eval_results/<dataset>.yaml` entry; dev scores chose the checkpoint and appear only in the card's table.
"""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, EvalResultEntry, ModelCard, ModelCardData, eval_result_entries_to_yaml
from transformers import MODEL_MAPPING, PreTrainedConfig
from transformers.utils import logging

from ..output_paths import refuse_to_replace
from .remote_code import package_version


logger = logging.get_logger(__name__)

# The pipeline task of the package's models: a card tag and the model-index task type.
TASK = "entity-typing"
LIBRARY_NAME = "modeling_entity_typing"
# The package's card template, a `Traversable` (a plain path in a checkout or an unzipped install).
CARD_TEMPLATE = resources.files(__package__) / "templates" / "model_card_template.md"
# (key in all_results.json after "<split>_", model-index metric type, display name)
CARD_METRICS = (
    ("strict_accuracy", "accuracy", "Strict accuracy"),
    ("micro_f1", "f1", "Micro F1 (loose)"),
    ("macro_f1", "f1", "Macro F1 (loose)"),
    ("macro_precision", "precision", "Macro precision (loose)"),
    ("macro_recall", "recall", "Macro recall (loose)"),
)
RESULT_SPLITS = (("dev", "validation"), ("test", "test"))
# Keys of all_results.json shown in the card's training section.
TRAINING_FACTS = (
    "k_shot",
    "sample_seed",
    "train_examples",
    "num_types",
    "steps",
    "best_step",
    "stopped_early",
    "global_batch_size",
    "num_processes",
)


# The systems of a zero-shot table, as the card names its columns: the model itself, then the free baselines.
ZERO_SHOT_SYSTEMS = (
    ("general", "this model"),
    ("plain_encoder", "plain encoder, zero-shot"),
    ("prototype", "frozen prototype"),
)
ZERO_SHOT_ROW_KEYS = ("schema", "name", "mentions", "labels", "headline", "systems")


@dataclass(frozen=True)
class ZeroShotTable:
    """The model's zero-shot scores across label schemas next to the free baselines (the JSON that
    `benchmarks/bench_zero_shot_schemas.py` writes): the model's own scores become `model-index` entries, the whole
    table a section of the card."""

    rows: Sequence[Mapping[str, Any]]
    command: str | None = None

    @classmethod
    def read(cls, path: str | Path) -> "ZeroShotTable":
        """Read and check the benchmark's JSON; a missing key is named with its row."""
        path = Path(path)
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: not a readable JSON file ({error}); write it with "
                             "benchmarks/bench_zero_shot_schemas.py --output.") from error  # fmt: skip
        rows = content.get("rows") if isinstance(content, dict) else None
        if not rows:
            raise ValueError(f"{path}: no `rows`; write it with benchmarks/bench_zero_shot_schemas.py --output.")
        for index, row in enumerate(rows):
            missing = [key for key in ZERO_SHOT_ROW_KEYS if key not in row]
            if missing or "general" not in row["systems"]:
                raise ValueError(
                    f"{path}: row {index} ({row.get('schema', '?')}) lacks {missing or ['systems.general']}."
                )
        return cls(rows, content.get("command"))

    def eval_results(self) -> list[EvalResult]:
        """One `model-index` entry per schema the model was not trained on: its headline score. Rows of UFET data
        (`ufet_derived`) stay in the card's table but claim nothing: for a model trained on UFET they are not
        zero-shot, and the run's own UFET test scores are the claim."""
        return [
            EvalResult(
                task_type=TASK,
                task_name="Zero-shot entity typing",
                dataset_type=row["schema"],
                dataset_name=row["name"],
                dataset_split="test",
                metric_type="f1",
                metric_name=f"{_HEADLINES[row['headline']]}, zero-shot",
                metric_value=float(row["systems"]["general"][row["headline"]]),
            )
            for row in self.rows
            if not row.get("ufet_derived")
        ]

    def card_rows(self) -> list[dict[str, Any]]:
        """Rows of the card's table: schema, sizes, the headline metric and each system's score in % (or "n/a")."""
        return [
            {
                "name": row["name"],
                "seen_in_training": bool(row.get("ufet_derived")),
                "mentions": row["mentions"],
                "labels": row["labels"],
                "metric": _HEADLINES[row["headline"]],
                "scores": [
                    "n/a" if row["systems"].get(key) is None else f"{100 * row['systems'][key][row['headline']]:.2f}"
                    for key, _ in ZERO_SHOT_SYSTEMS
                ],
            }
            for row in self.rows
        ]


_HEADLINES = {"micro_f1": "Micro F1 (loose)", "macro_f1": "Macro F1 (loose)"}


def read_results(model_dir: str | Path) -> dict[str, Any]:
    """The run's `all_results.json`, or `{}` (with a warning) when the folder has none."""
    path = Path(model_dir, "all_results.json")
    if not path.is_file():
        logger.warning(f"{path} not found: the model card will have no evaluation results.")
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); fix or remove it.") from error


def build_card_data(
    config: PreTrainedConfig,
    results: Mapping[str, Any],
    repo_id: str,
    *,
    base_model: str | None = None,
    dataset_name: str | None = None,
    dataset_type: str | None = None,
    dataset_id: str | None = None,
    language: str | list[str] | None = None,
    license: str = "apache-2.0",
    zero_shot: ZeroShotTable | None = None,
) -> ModelCardData:
    """Metadata of the exported card: tags, base model, datasets, the run's test scores and (given) its zero-shot
    scores across schemas as `model-index`."""
    has_test = any(f"test_{key}" in results for key, _, _ in CARD_METRICS)
    if has_test and not dataset_name:
        raise ValueError(
            "all_results.json has test scores but no dataset was named: pass `dataset_name` (`--dataset_name`, e.g. "
            '"OntoNotes (FiveFine 5-shot splits)") so the model-index says what the scores are on.'
        )
    eval_results = None
    if has_test:
        eval_results = eval_results_for(results, dataset_name, dataset_type or dataset_id or _slug(dataset_name))
    elif zero_shot is None:
        logger.warning("No test scores in all_results.json: the card gets no model-index.")
    if zero_shot is not None:
        eval_results = [*(eval_results or []), *zero_shot.eval_results()]
    return ModelCardData(
        license=license,
        library_name=LIBRARY_NAME,
        language=language,
        base_model=base_model,
        datasets=[dataset_id] if dataset_id else None,
        tags=[TASK, "fine-grained-entity-typing", config.model_type, "custom_code"],
        metrics=sorted({metric_type for key, metric_type, _ in CARD_METRICS if f"test_{key}" in results}) or None,
        model_name=repo_id.rpartition("/")[2],
        eval_results=eval_results,
    )


def render_model_card(
    card_data: ModelCardData,
    config: PreTrainedConfig,
    results: Mapping[str, Any],
    repo_id: str,
    *,
    dataset_name: str | None = None,
    template_path: str | Path | None = None,
    zero_shot: ZeroShotTable | None = None,
    build_command: str | None = None,
) -> ModelCard:
    """Render the Jinja template (the package's own unless `template_path` is given) into a `ModelCard`; with the
    zero-shot table, the run's calibration and the command that built the model where given."""
    template = card_template_text(template_path)
    labels = config.label_list()  # every family's config honours the contract (`contract.EntityTypingConfig`)
    model_class = MODEL_MAPPING[type(config)]
    rows = result_rows(results)
    return ModelCard.from_template(
        card_data,
        template_str=template,
        repo_id=repo_id,
        model_type=config.model_type,
        model_class=model_class.__name__,
        config_class=type(config).__name__,
        num_labels=len(labels),
        label_examples=labels[:12],
        decision=config.decision,
        threshold=config.threshold,
        label_thresholds=sorted(set((config.label_thresholds or {}).values())),
        num_label_thresholds=len(config.label_thresholds or {}),
        scoring=config.scoring_description(),
        dataset_name=dataset_name,
        result_rows=rows,
        metric_columns=[(key, name) for key, _, name in CARD_METRICS if any(key in row["metrics"] for row in rows)],
        training={key: results[key] for key in TRAINING_FACTS if results.get(key) is not None},
        package_version=package_version(),
        zero_shot_rows=zero_shot.card_rows() if zero_shot else None,
        zero_shot_systems=[name for _, name in ZERO_SHOT_SYSTEMS],
        zero_shot_command=zero_shot.command if zero_shot else None,
        calibration=results.get("calibration"),
        build_command=build_command,
    )


def write_eval_results(
    output_dir: str | Path,
    results: Mapping[str, Any],
    dataset_id: str,
    task_id: str = "default",
    *,
    overwrite: bool = False,
) -> Path | None:
    """Write `.eval_results/<dataset>.yaml` with the test macro-F1 for the Hub dataset `dataset_id`.

    Returns the file, or None when the run has no test macro-F1 (nothing to claim). An existing file (another
    run's claim) is replaced only with `overwrite=True`.
    """
    if "test_macro_f1" not in results:
        return None
    entry = EvalResultEntry(
        dataset_id=dataset_id,
        task_id=task_id,
        value=float(results["test_macro_f1"]),
        notes="loose macro F1 on the test split, from the run's all_results.json",
    )
    path = Path(output_dir, ".eval_results", f"{_slug(dataset_id)}.yaml")
    refuse_to_replace([path], overwrite, "`overwrite=True`")
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(eval_result_entries_to_yaml([entry]), sort_keys=False), encoding="utf-8")
    return path


def card_template_text(template_path: str | Path | None = None) -> str:
    """The Jinja text of `template_path`, or of the package's template (package data, so a wheel has it too)."""
    if template_path is None:
        return CARD_TEMPLATE.read_text(encoding="utf-8")
    template_path = Path(template_path)
    if not template_path.is_file():
        raise FileNotFoundError(
            f"Model card template {template_path} not found; pass an existing file, or no `template_path` (the "
            "`--template` option of examples/push_to_hub.py) for the package's own template."
        )
    return template_path.read_text(encoding="utf-8")


def result_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per split found in `results`: `{"split", "metrics": {key: value}}` with fractions as stored."""
    rows = []
    for split, _ in RESULT_SPLITS:
        metrics = {key: results[f"{split}_{key}"] for key, _, _ in CARD_METRICS if f"{split}_{key}" in results}
        if metrics:
            rows.append({"split": split, "metrics": metrics, "num_mentions": results.get(f"{split}_num_mentions")})
    return rows


def eval_results_for(results: Mapping[str, Any], dataset_name: str, dataset_type: str) -> list[EvalResult]:
    """`EvalResult`s (model-index) for the run's **test** scores; dev scores chose the checkpoint and are left out."""
    return [
        EvalResult(
            task_type=TASK,
            task_name="Entity Typing",
            dataset_type=dataset_type,
            dataset_name=dataset_name,
            dataset_split="test",
            metric_type=metric_type,
            metric_name=metric_name,
            metric_value=float(results[f"test_{key}"]),
        )
        for key, metric_type, metric_name in CARD_METRICS
        if f"test_{key}" in results
    ]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "dataset"


__all__ = [
    "CARD_TEMPLATE",
    "ZeroShotTable",
    "build_card_data",
    "card_template_text",
    "eval_results_for",
    "read_results",
    "render_model_card",
    "result_rows",
    "write_eval_results",
]
