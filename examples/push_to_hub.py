"""Export a trained entity typing model to a Hub-ready folder and upload it.

The folder loads with the package installed (library mode) and with transformers alone (`trust_remote_code=True`):
safetensors weights, `config.json` with `auto_map` and `custom_pipelines`, flat remote-code files, the tokenizer and
a model card (`README.md`) with the run's test scores as model-index metadata. Every argument is checked before
anything is written, and the folder is written beside --output_dir and renamed into place at the end, so a failed
export leaves nothing behind (nor loses the folder --overwrite_output_dir would replace) and the rerun needs no flag.

    # look at the folder first
    python examples/push_to_hub.py --model_dir outputs/onto-5shot-0 --repo_id org/fivefine-onto-5shot \\
        --dataset_name "OntoNotes (FiveFine 5-shot splits)" --base_model bert-base-cased --language en \\
        --dry_run --output_dir outputs/onto-5shot-0-hub

    # then upload (after `hf auth login`, or with --token / HF_TOKEN)
    python examples/push_to_hub.py --model_dir outputs/onto-5shot-0 --repo_id org/fivefine-onto-5shot \\
        --dataset_name "OntoNotes (FiveFine 5-shot splits)" --base_model bert-base-cased --language en --private
"""

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from modeling_entity_typing.export.hub import HubUploadError, export_for_hub, push_folder_to_hub


@dataclass
class PushArguments:
    """What to export, where to, and how to describe it."""

    model_dir: str = field(metadata={"help": "A saved model: the output_dir of finetune_fet.py or pretrain_ufet.py."})
    repo_id: str = field(metadata={"help": "The Hub repository, `org/name`."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Where the Hub-ready folder goes; default: `<model_dir>-hub` next to it."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace a non-empty --output_dir (kept until the new folder is complete)."}
    )
    dry_run: bool = field(default=False, metadata={"help": "Write the folder only; do not upload."})
    private: bool = field(default=False, metadata={"help": "Create the repository as private."})
    token: str | None = field(default=None, metadata={"help": "Hub token; default: HF_TOKEN or `hf auth login`."})
    commit_message: str = field(default="Upload entity typing model", metadata={"help": "The upload's message."})
    base_model: str | None = field(default=None, metadata={"help": "Hub id of the encoder, e.g. bert-base-cased."})
    dataset_name: str | None = field(
        default=None, metadata={"help": "Name of the test data behind all_results.json (needed with test scores)."}
    )
    dataset_type: str | None = field(default=None, metadata={"help": "model-index dataset type; default: a slug."})
    dataset_id: str | None = field(
        default=None, metadata={"help": "Hub dataset id of the test data; adds `.eval_results/` and `datasets:`."}
    )
    eval_task_id: str = field(default="default", metadata={"help": "Task id within --dataset_id's benchmark."})
    language: list[str] | None = field(default=None, metadata={"help": "Language codes of the model, e.g. en zh."})
    license: str = field(default="apache-2.0", metadata={"help": "License of the weights (check the data's)."})
    template: str | None = field(
        default=None, metadata={"help": "A Jinja model card template; default: the one shipped with the package."}
    )

    def __post_init__(self):
        if self.output_dir is None:
            model_dir = Path(self.model_dir)
            self.output_dir = str(model_dir.parent / f"{model_dir.name}-hub")


def parse_args(argv: list[str] | None = None) -> PushArguments:
    (args,) = HfArgumentParser(PushArguments).parse_args_into_dataclasses(args=argv)
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    folder = export_for_hub(
        args.model_dir,
        args.output_dir,
        args.repo_id,
        base_model=args.base_model,
        dataset_name=args.dataset_name,
        dataset_type=args.dataset_type,
        dataset_id=args.dataset_id,
        eval_task_id=args.eval_task_id,
        language=args.language,
        license=args.license,
        template_path=args.template,
        overwrite=args.overwrite_output_dir,
    )
    files = sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
    print(f"Hub-ready folder for {args.repo_id}: {folder}\n  " + "\n  ".join(files))
    if args.dry_run:
        print("Dry run: nothing uploaded.")
        return folder
    try:
        url = push_folder_to_hub(
            folder, args.repo_id, token=args.token, private=args.private, commit_message=args.commit_message
        )
    except HubUploadError as error:
        raise SystemExit(f"error: {error}") from error
    print(f"Uploaded: {url}")
    return folder


if __name__ == "__main__":
    main(sys.argv[1:])
