"""Hub export: turn a saved model folder into a Hub repo that loads with or without this package, and upload it.

The export holds the safetensors weights, a `config.json` with `auto_map` and `custom_pipelines`, the tokenizer,
the remote code as flat sibling files (`remote_code`), and a `README.md` model card with the run's own test scores
as `model-index` metadata (`model_card`). This module only puts those pieces together and uploads the folder.
"""

import json
import shutil
from pathlib import Path

from huggingface_hub import HfApi, ModelCard
from huggingface_hub import get_token as get_hub_token
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import (
    MODEL_MAPPING,
    AutoConfig,
    AutoTokenizer,
    PreTrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.utils import logging

from ..output_paths import staged_output_dir
from .model_card import TASK, ZeroShotTable, build_card_data, read_results, render_model_card, write_eval_results
from .remote_code import PACKAGE, RemoteCodeFile, check_remote_code, entry_reference, remote_code_files


logger = logging.get_logger(__name__)

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


class HubUploadError(RuntimeError):
    """The export folder is complete, but creating the repo or uploading to it failed."""


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
    zero_shot: ZeroShotTable | None = None,
    build_command: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a Hub-ready copy of the saved model in `model_dir` to `output_dir`; returns `output_dir`.

    `dataset_id` (a Hub dataset) also adds `.eval_results/<dataset>.yaml` with the test macro-F1 under `eval_task_id`.
    `zero_shot` (the model's scores across label schemas beside the free baselines) adds `model-index` entries, a card
    section and `zero_shot_schemas.json`; `build_command` is shown in the card as the way the model was built.
    Every argument is checked, and the config, tokenizer, results and card are read, before anything is written; the
    folder is written beside `output_dir` and renamed into place at the end, so a failure leaves `output_dir` as it
    was (absent, or the old export that `overwrite` would have replaced).
    """
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    for argument, hub_id in (("repo_id", repo_id), ("base_model", base_model), ("dataset_id", dataset_id)):
        _check_hub_id(argument, hub_id)
    _check_model_dir(model_dir)
    if output_dir.resolve() == model_dir.resolve() or model_dir.resolve() in output_dir.resolve().parents:
        raise ValueError(f"`output_dir` ({output_dir}) must be outside `model_dir` ({model_dir}).")
    config = AutoConfig.from_pretrained(model_dir)
    model_class = _package_model_class(model_dir, config)
    tokenizer = _load_tokenizer(model_dir)
    results = read_results(model_dir)
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
        zero_shot=zero_shot,
    )
    card = render_model_card(
        card_data,
        config,
        results,
        repo_id,
        dataset_name=dataset_name,
        template_path=template_path,
        zero_shot=zero_shot,
        build_command=build_command,
    )
    code = _point_config_at_remote_code(config, model_class)

    # `keep`: replacing the output folder must never delete the model being read
    with staged_output_dir(output_dir, overwrite, keep=model_dir) as staging:
        for item in code:
            Path(staging, item.filename).write_text(item.text, encoding="utf-8")
        check_remote_code(staging, [item.filename for item in code])
        config.save_pretrained(staging)
        _copy_weights(model_dir, staging)
        tokenizer.save_pretrained(staging)
        if results:
            shutil.copyfile(Path(model_dir, "all_results.json"), staging / "all_results.json")
        card.save(staging / "README.md")
        if zero_shot is not None:
            content = {"command": zero_shot.command, "rows": list(zero_shot.rows)}
            Path(staging, "zero_shot_schemas.json").write_text(json.dumps(content, indent=2), encoding="utf-8")
        if dataset_id:
            write_eval_results(staging, results, dataset_id, eval_task_id)
        files = sorted(path.name for path in staging.iterdir())
    logger.info(f"Exported {model_dir} for {repo_id} to {output_dir}: {files}")
    return output_dir


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
                f"The Hub rejected the model card {folder / 'README.md'}: {error}. Nothing was uploaded; fix the "
                "card template (modeling_entity_typing/export/templates/model_card_template.md, or `--template`) "
                "or the export's arguments and export again."
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


# ---------------------------------------------------------------------------------------------------------------------
# Steps of the export


def _check_model_dir(model_dir: Path) -> None:
    """Raise unless `model_dir` holds what `save_pretrained` writes: a config and safetensors weights."""
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


def _package_model_class(model_dir: Path, config: PreTrainedConfig) -> type[PreTrainedModel]:
    """The package's model class for `config`; other models have no remote code here to ship."""
    model_class = MODEL_MAPPING[type(config)] if type(config) in MODEL_MAPPING else None
    if model_class is None or model_class.__module__.partition(".")[0] != PACKAGE:
        raise ValueError(
            f"{model_dir} holds a {type(config).__name__} (model_type {config.model_type!r}), which is not one of "
            f"{PACKAGE}'s model families; only the package's own models can be exported."
        )
    return model_class


def _point_config_at_remote_code(config: PreTrainedConfig, model_class: type[PreTrainedModel]) -> list[RemoteCodeFile]:
    """The flat code of the config, model and pipeline classes; sets `config.auto_map` and `custom_pipelines` to it."""
    pipeline_class = PIPELINE_REGISTRY.check_task(TASK)[1]["impl"]
    code = remote_code_files([type(config), model_class, pipeline_class])
    config.auto_map = {"AutoConfig": entry_reference(type(config)), "AutoModel": entry_reference(model_class)}
    config.custom_pipelines = {TASK: {"impl": entry_reference(pipeline_class), "pt": ["AutoModel"]}}
    return code


def _copy_weights(model_dir: Path, output_dir: Path) -> None:
    """Copy the safetensors weights byte for byte: one file, or the index and its shards."""
    for name in WEIGHT_FILES:
        if Path(model_dir, name).is_file():
            shutil.copyfile(Path(model_dir, name), output_dir / name)
    index = Path(model_dir, "model.safetensors.index.json")
    if index.is_file():
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            shutil.copyfile(Path(model_dir, shard), output_dir / shard)


def _load_tokenizer(model_dir: Path) -> PreTrainedTokenizerBase:
    """The tokenizer saved next to the model; the Hub repo needs it for `pipeline(model=repo_id)`."""
    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"No tokenizer could be loaded from {model_dir} ({error}); save it next to the model with "
            "`tokenizer.save_pretrained(model_dir)`."
        ) from error


def _check_hub_id(argument: str, hub_id: str | None) -> None:
    """Raise, naming `argument`, unless `hub_id` (when given) is a valid Hub id (`name` or `org/name`)."""
    if hub_id is None:
        return
    try:
        validate_repo_id(hub_id)
    except HFValidationError as error:
        raise HFValidationError(
            f"`{argument}` (`--{argument}`) {hub_id!r} is not a valid Hub id, `name` or `org/name`: {error}"
        ) from error


__all__ = ["HubUploadError", "export_for_hub", "push_folder_to_hub"]
