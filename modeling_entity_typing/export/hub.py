"""Hub export: turn a saved model folder into a Hub repo that loads with or without this package, and upload it.

The export holds the safetensors weights, a `config.json` with `auto_map` and `custom_pipelines`, the tokenizer,
the remote code as flat sibling files, and a `README.md` model card rendered from `model_cards/` with the run's own
test scores as `model-index` metadata. Remote code has to be flat because `custom_object_save` follows only
same-directory relative imports while this package keeps its configs and pipelines in mapped sub-packages
(Hub custom code): the files are derived by following the package-relative imports of the modules that define
the model, config and pipeline classes, and those imports are rewritten to `from .<flat module> import ...`.
"""

import ast
import importlib.machinery
import importlib.util
import json
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, EvalResultEntry, HfApi, ModelCard, ModelCardData, eval_result_entries_to_yaml
from huggingface_hub import get_token as get_hub_token
from huggingface_hub.utils import validate_repo_id
from transformers import MODEL_MAPPING, AutoConfig, AutoTokenizer, PreTrainedConfig
from transformers.dynamic_module_utils import get_imports, get_relative_imports
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.utils import logging


logger = logging.get_logger(__name__)

TASK = "entity-typing"
PACKAGE = __name__.partition(".")[0]
# Top-level modules remote code may import besides the standard library (`transformers` brings the other two).
REMOTE_CODE_ALLOWED_IMPORTS = frozenset({"torch", "transformers", "huggingface_hub"})
# Flat file name prefixes for modules of sub-packages whose own names do not say their role.
FLAT_NAME_PREFIXES = {f"{PACKAGE}.pipelines": "pipeline_"}
CARD_TEMPLATE = Path(__file__).resolve().parents[2] / "model_cards" / "model_card_template.md"
LIBRARY_NAME = "modeling_entity_typing"
# (key in all_results.json after "<split>_", model-index metric type, display name)
CARD_METRICS = (
    ("strict_accuracy", "accuracy", "Strict accuracy"),
    ("micro_f1", "f1", "Micro F1 (loose)"),
    ("macro_f1", "f1", "Macro F1 (loose)"),
    ("macro_precision", "precision", "Macro precision (loose)"),
    ("macro_recall", "recall", "Macro recall (loose)"),
)
RESULT_SPLITS = (("dev", "validation"), ("test", "test"))
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


class HubUploadError(RuntimeError):
    """The export folder is complete, but creating the repo or uploading to it failed."""


@dataclass(frozen=True)
class RemoteCodeFile:
    """One flat remote-code module: its file name in the export, the package module it comes from, its source."""

    filename: str
    source_module: str
    text: str


# ---------------------------------------------------------------------------------------------------------------------
# Remote code: flat files derived from the package's relative imports


def _spec(module: str) -> importlib.machinery.ModuleSpec:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"Cannot locate the source of module {module!r} for the remote-code export.")
    return spec


def _is_package(module: str) -> bool:
    return _spec(module).submodule_search_locations is not None


def _parse(module: str) -> ast.Module:
    path = Path(_spec(module).origin)
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _package_version() -> str:
    from .. import __version__  # at call time: the package's __init__ has finished by then

    return __version__


def flat_module_name(module: str) -> str:
    """`modeling_entity_typing.pipelines.entity_typing` -> `pipeline_entity_typing`; other modules keep their name."""
    parent, _, name = module.rpartition(".")
    prefix = FLAT_NAME_PREFIXES.get(parent, "")
    return name if name.startswith(prefix) else prefix + name


def _top(module: str) -> str:
    return module.partition(".")[0]


def _resolve_from(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a relative `from ... import` in `module` points at."""
    package = module if _is_package(module) else module.rpartition(".")[0]
    try:
        return importlib.util.resolve_name("." * node.level + (node.module or ""), package)
    except ImportError as error:  # more dots than parent packages
        raise ValueError(f"{module} (line {node.lineno}): {error}") from error


def _defining_module(module: str, name: str) -> tuple[str, str]:
    """`(module, name)` that really defines `name` as imported from `module`, following relative re-exports."""
    for node in _parse(module).body:
        if isinstance(node, ast.ImportFrom) and node.level > 0 and node.module is not None:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return _defining_module(_resolve_from(module, node), alias.name)
    if _is_package(module):
        raise ValueError(
            f"{name!r} is imported from the package {module!r} but not re-exported from one of its modules; remote "
            f"code needs every name to live in a module file. Import it from the module that defines it."
        )
    return module, name


def _relative_imports(module: str, tree: ast.Module) -> list[tuple[ast.ImportFrom, dict[str, list[str]]]]:
    """Each relative import of `module` with its names grouped by defining module (`{module: ["a", "b as c"]}`)."""
    found, package = [], _top(module)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(_top(alias.name) == package for alias in node.names):
            raise ValueError(
                f"{module} (line {node.lineno}) imports {package} absolutely; remote code cannot import the package. "
                "Use a relative import (`from .module import name`)."
            )
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0:
            if node.module and _top(node.module) == package:
                raise ValueError(
                    f"{module} (line {node.lineno}) has `from {node.module} import ...`; remote code cannot import "
                    f"the package. Use a relative import (`from .module import name`)."
                )
            continue
        base = _resolve_from(module, node)
        if node.module is None or any(alias.name == "*" for alias in node.names):
            raise ValueError(
                f"{module} (line {node.lineno}): `from {'.' * node.level}{node.module or ''} import "
                f"{', '.join(alias.name for alias in node.names)}` cannot be flattened; import names from the "
                "module that defines them (`from .module import name`)."
            )
        grouped: dict[str, list[str]] = {}
        for alias in node.names:
            source, original = _defining_module(base, alias.name)
            local = alias.asname or alias.name
            grouped.setdefault(source, []).append(original if local == original else f"{original} as {local}")
        found.append((node, grouped))
    return found


def _rewrite(module: str, source: str, imports: list[tuple[ast.ImportFrom, dict[str, list[str]]]]) -> str:
    lines = source.splitlines(keepends=True)
    for node, grouped in sorted(imports, key=lambda item: item[0].lineno, reverse=True):
        first, last = lines[node.lineno - 1], lines[node.end_lineno - 1]
        indent = first[: node.col_offset]
        if indent.strip() or last[node.end_col_offset :].split("#")[0].strip():
            raise ValueError(
                f"{module} (line {node.lineno}): a relative import that shares its line with other code cannot be "
                "rewritten for remote code; put it on its own line."
            )
        lines[node.lineno - 1 : node.end_lineno] = [
            f"{indent}from .{flat_module_name(target)} import {', '.join(names)}\n"
            for target, names in grouped.items()
        ]
    return "".join(lines)


def flatten_remote_code(modules: Iterable[str]) -> list[RemoteCodeFile]:
    """The flat remote-code files for `modules` and every package module they reach through relative imports."""
    queue = list(dict.fromkeys(modules))
    packages = {_top(module) for module in queue}
    if len(packages) > 1:
        raise ValueError(f"Remote code comes from one package; got modules of {sorted(packages)}.")
    done: dict[str, RemoteCodeFile] = {}
    while queue:
        module = queue.pop(0)
        if module in done:
            continue
        if _is_package(module):
            raise ValueError(f"{module!r} is a package; export the module that defines the class instead.")
        path = Path(_spec(module).origin)
        source = path.read_text(encoding="utf-8")
        imports = _relative_imports(module, ast.parse(source, filename=str(path)))
        header = (
            f"# Generated from `{module}` ({_top(module)} {_package_version()}) for trust_remote_code loading; "
            "edit the package, not this file.\n"
        )
        text = header + _rewrite(module, source, imports)
        done[module] = RemoteCodeFile(f"{flat_module_name(module)}.py", module, text)
        queue.extend(target for _, grouped in imports for target in grouped)
    clashes = {}
    for item in done.values():
        clashes.setdefault(item.filename, []).append(item.source_module)
    clashes = {name: sources for name, sources in clashes.items() if len(sources) > 1}
    if clashes:
        raise ValueError(f"Modules that would share a flat remote-code file name: {clashes}; rename one of them.")
    return list(done.values())


def check_remote_code(folder: str | Path, filenames: Iterable[str]) -> None:
    """Raise if a remote-code file imports anything `trust_remote_code` users may lack, or a file not shipped.

    Uses transformers' own `get_imports` (imports inside `try` blocks and `if is_..._available()` are optional and
    not checked) and `get_relative_imports` (the regex that decides which sibling files get downloaded).
    """
    filenames = set(filenames)
    for filename in sorted(filenames):
        path = Path(folder, filename)
        foreign = [
            name
            for name in get_imports(path)
            if name not in sys.stdlib_module_names and name not in REMOTE_CODE_ALLOWED_IMPORTS
        ]
        if foreign:
            hint = (
                f"{PACKAGE} itself cannot be imported by remote code; use relative imports"
                if PACKAGE in foreign
                else "guard optional imports with try/except ImportError, or move the code out of the model's files"
            )
            raise ValueError(
                f"Remote-code file {filename} imports {foreign}; only the standard library and "
                f"{sorted(REMOTE_CODE_ALLOWED_IMPORTS)} are allowed ({hint})."
            )
        missing = sorted(f"{name}.py" for name in get_relative_imports(path) if f"{name}.py" not in filenames)
        if missing:
            raise ValueError(
                f"Remote-code file {filename} relatively imports {missing}, which the export does not contain (a line "
                "starting with `from .x import` in a docstring counts too, as transformers reads them by regex)."
            )


# ---------------------------------------------------------------------------------------------------------------------
# Model card


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
) -> ModelCardData:
    """Metadata of the exported card: tags, base model, datasets and the run's test scores as `model-index`."""
    has_test = any(f"test_{key}" in results for key, _, _ in CARD_METRICS)
    if has_test and not dataset_name:
        raise ValueError(
            "all_results.json has test scores but no dataset was named: pass `dataset_name` (`--dataset_name`, e.g. "
            '"OntoNotes (FiveFine 5-shot splits)") so the model-index says what the scores are on.'
        )
    eval_results = None
    if has_test:
        eval_results = eval_results_for(results, dataset_name, dataset_type or dataset_id or _slug(dataset_name))
    else:
        logger.warning("No test scores in all_results.json: the card gets no model-index.")
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


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "dataset"


def render_model_card(
    card_data: ModelCardData,
    config: PreTrainedConfig,
    results: Mapping[str, Any],
    repo_id: str,
    *,
    dataset_name: str | None = None,
    template_path: str | Path | None = None,
) -> ModelCard:
    """Render the package's Jinja template (`model_cards/model_card_template.md`) into a `ModelCard`."""
    template_path = Path(template_path or CARD_TEMPLATE)
    if not template_path.is_file():
        raise FileNotFoundError(
            f"Model card template {template_path} not found. It ships in the repository's model_cards/ folder; run "
            "from a checkout or pass `template_path`."
        )
    labels = [config.id2label[index] for index in range(len(config.id2label or {}))]
    model_class = MODEL_MAPPING[type(config)]
    rows = result_rows(results)
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        repo_id=repo_id,
        model_type=config.model_type,
        model_class=model_class.__name__,
        config_class=type(config).__name__,
        num_labels=len(labels),
        label_examples=labels[:12],
        decision=getattr(config, "decision", None),
        threshold=getattr(config, "threshold", None),
        dataset_name=dataset_name,
        result_rows=rows,
        metric_columns=[(key, name) for key, _, name in CARD_METRICS if any(key in row["metrics"] for row in rows)],
        training={key: results[key] for key in TRAINING_FACTS if results.get(key) is not None},
        package_version=_package_version(),
    )


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


# ---------------------------------------------------------------------------------------------------------------------
# Export and upload


def _check_model_dir(model_dir: Path) -> None:
    if not Path(model_dir, "config.json").is_file():
        raise FileNotFoundError(
            f"{model_dir} has no config.json; point `model_dir` at a folder written by `save_pretrained` (the "
            "output_dir of examples/finetune_fet.py or examples/pretrain_ufet.py)."
        )
    if not any(Path(model_dir, name).is_file() for name in WEIGHT_FILES):
        raise FileNotFoundError(
            f"{model_dir} has no safetensors weights ({' or '.join(WEIGHT_FILES)}); the Hub export ships safetensors "
            "only. Re-save the model with `model.save_pretrained(model_dir)`."
        )


def _prepare_output_dir(model_dir: Path, output_dir: Path, overwrite: bool) -> None:
    if output_dir.resolve() == model_dir.resolve() or model_dir.resolve() in output_dir.resolve().parents:
        raise ValueError(f"`output_dir` ({output_dir}) must be outside `model_dir` ({model_dir}).")
    if output_dir.exists() and any(output_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{output_dir} exists and is not empty; choose a new `output_dir` or pass `overwrite=True` "
                "(`--overwrite_output_dir`) to replace it."
            )
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)


def export_for_hub(
    model_dir: str | Path,
    output_dir: str | Path,
    repo_id: str,
    *,
    base_model: str | None = None,
    dataset_name: str | None = None,
    dataset_type: str | None = None,
    dataset_id: str | None = None,
    eval_task_id: str = "default",
    language: str | list[str] | None = None,
    license: str = "apache-2.0",
    template_path: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a Hub-ready copy of the saved model in `model_dir` to `output_dir`; returns `output_dir`.

    `dataset_id` (a Hub dataset) also adds `.eval_results/<dataset>.yaml` with the test macro-F1 under `eval_task_id`.
    """
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    validate_repo_id(repo_id)
    _check_model_dir(model_dir)
    _prepare_output_dir(model_dir, output_dir, overwrite)
    config = AutoConfig.from_pretrained(model_dir)
    model_class = MODEL_MAPPING[type(config)] if type(config) in MODEL_MAPPING else None
    if model_class is None or _top(model_class.__module__) != PACKAGE:
        raise ValueError(
            f"{model_dir} holds a {type(config).__name__} (model_type {config.model_type!r}), which is not one of "
            f"{PACKAGE}'s model families; only the package's own models can be exported."
        )
    pipeline_class = PIPELINE_REGISTRY.check_task(TASK)[1]["impl"]

    # Remote code first: a module that cannot be shipped stops the export before weights and card are written.
    code = flatten_remote_code([type(config).__module__, model_class.__module__, pipeline_class.__module__])
    for item in code:
        Path(output_dir, item.filename).write_text(item.text, encoding="utf-8")
    check_remote_code(output_dir, [item.filename for item in code])

    config.auto_map = {
        "AutoConfig": f"{flat_module_name(type(config).__module__)}.{type(config).__name__}",
        "AutoModel": f"{flat_module_name(model_class.__module__)}.{model_class.__name__}",
    }
    config.custom_pipelines = {
        TASK: {"impl": f"{flat_module_name(pipeline_class.__module__)}.{pipeline_class.__name__}", "pt": ["AutoModel"]}
    }
    config.save_pretrained(output_dir)
    for name in ("model.safetensors", "model.safetensors.index.json"):
        if Path(model_dir, name).is_file():
            shutil.copyfile(Path(model_dir, name), output_dir / name)
    index = Path(model_dir, "model.safetensors.index.json")
    if index.is_file():
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            shutil.copyfile(Path(model_dir, shard), output_dir / shard)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"No tokenizer could be loaded from {model_dir} ({error}); save it next to the model with "
            "`tokenizer.save_pretrained(model_dir)`."
        ) from error
    tokenizer.save_pretrained(output_dir)

    results = read_results(model_dir)
    if results:
        shutil.copyfile(Path(model_dir, "all_results.json"), output_dir / "all_results.json")
    card_data = build_card_data(
        config,
        results,
        repo_id,
        base_model=base_model,
        dataset_name=dataset_name,
        dataset_type=dataset_type,
        dataset_id=dataset_id,
        language=language,
        license=license,
    )
    card = render_model_card(
        card_data, config, results, repo_id, dataset_name=dataset_name, template_path=template_path
    )
    card.save(output_dir / "README.md")
    if dataset_id and "test_macro_f1" in results:
        entry = EvalResultEntry(
            dataset_id=dataset_id,
            task_id=eval_task_id,
            value=float(results["test_macro_f1"]),
            notes="loose macro F1 on the test split, from the run's all_results.json",
        )
        eval_dir = output_dir / ".eval_results"
        eval_dir.mkdir(exist_ok=True)
        path = eval_dir / f"{_slug(dataset_id)}.yaml"
        path.write_text(yaml.safe_dump(eval_result_entries_to_yaml([entry]), sort_keys=False), encoding="utf-8")
    logger.info(f"Exported {model_dir} for {repo_id} to {output_dir}: {sorted(p.name for p in output_dir.iterdir())}")
    return output_dir


def remove_remote_code_fields(config: PreTrainedConfig) -> None:
    """Drop `auto_map` and `custom_pipelines` from a config loaded from an exported repo, before saving a new model.

    A model fine-tuned from a Hub export keeps both fields; saved without the flat `.py` files they point at, its
    folder would fail in remote-code mode and ask for `trust_remote_code` in `pipeline()` in library mode.
    """
    for name in ("auto_map", "custom_pipelines"):
        if hasattr(config, name):
            delattr(config, name)


def push_folder_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload entity typing model",
) -> str:
    """Create `repo_id` (if needed) and upload `folder`; returns the commit URL. Failures leave `folder` untouched."""
    folder = Path(folder)
    token = token or get_hub_token()
    how_to_retry = (
        f"The export folder {folder} is complete; upload it later with "
        f"`hf upload {repo_id} {folder} .` or examples/push_to_hub.py."
    )
    if not token:
        raise HubUploadError(
            f"No Hugging Face token found for uploading to {repo_id}: log in with `hf auth login`, set HF_TOKEN or "
            f"pass `--token`. {how_to_retry}"
        )
    api = HfApi(token=token)
    try:
        try:
            ModelCard.load(folder / "README.md").validate()  # the Hub's own metadata check, before creating anything
        except ValueError as error:  # a card the Hub rejects
            raise HubUploadError(
                f"The Hub rejected the model card {folder / 'README.md'}: {error}. Nothing was uploaded; fix "
                "model_cards/model_card_template.md or the export's arguments and export again."
            ) from error
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message=commit_message)
    except HubUploadError:
        raise
    except Exception as error:  # network, auth, offline mode: all end the same way for the user
        raise HubUploadError(
            f"Uploading to {repo_id} failed ({type(error).__name__}: {error}). Check the network, that HF_HUB_OFFLINE "
            f"is not set, and that the token may write to {repo_id}. {how_to_retry}"
        ) from error
    return str(getattr(commit, "commit_url", commit))


__all__ = [
    "HubUploadError",
    "RemoteCodeFile",
    "build_card_data",
    "check_remote_code",
    "eval_results_for",
    "export_for_hub",
    "flat_module_name",
    "flatten_remote_code",
    "push_folder_to_hub",
    "read_results",
    "remove_remote_code_fields",
    "render_model_card",
    "result_rows",
]
