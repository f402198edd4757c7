"""Zero-shot typing across schemas in one command: every row (schema) and column (system) scored by the same code.

Systems (columns), each typing a schema's labels read as phrases (`label_phrases_for`: FiveFine's tables for
OntoNotes and Few-NERD, the default rule, last path segment with `_` as a space, for FIGER, Open Entity and UFET):

* `general`: a FiveFine checkpoint (`--model`, e.g. the UFET model), its label set replaced by the schema's.
* `plain_encoder`: `BertForPhraseTypeTyping.from_encoder(--encoder, phrases, type_space="encoder")`, never trained
  (as `bench_fet_baselines.py --method zero_shot_fivefine --type_space encoder`).
* `prototype`: the frozen prototype baseline of `bench_fet_baselines.py` on the plain encoder, prototypes from the
  schema's training file; null, with the reason, where the data folder has none.

Both models score `calibrated_scores(embed_mentions, type_embeddings(), config)` (what the pipeline computes: the dot
products through the model's calibration), probabilities its sigmoid.
Decision rule per schema, the same for every system:

* hierarchical single-path schemas (OntoNotes, FIGER, Few-NERD): the best label plus its `/`-path ancestors;
  strict accuracy, loose micro-F1 (headline), loose macro-F1.
* multi-label schemas (Open Entity's 9 general types, UFET): every label at or above a threshold, else the best one,
  the threshold chosen per system on the schema's dev file (`tune_threshold`, best dev macro-F1, ties to the higher
  one); headline loose macro-F1. The prototype has no probabilities: its threshold is chosen the same way, on the
  same grid, over cosine similarities to the prototypes.

    python benchmarks/bench_zero_shot_schemas.py --model outputs/fivefine-minilm-ufet-run \\
        --output benchmarks/results/zero_shot_schemas.json
    python benchmarks/bench_zero_shot_schemas.py --model outputs/bench/ufet-bank-u1 --limit 200 \\
        --output /tmp/zs_smoke.json   # a smoke run: the first 200 mentions of every file read
"""

import argparse
import json
import logging
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bench_fet_baselines as baselines
import torch
import torch.nn.functional as F
from common import DEFAULT_DATA_DIR, machine, report, ufet_types
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from modeling_entity_typing import BertForPhraseTypeTyping
from modeling_entity_typing.calibration import calibrated_scores
from modeling_entity_typing.data.mention_data import labels_in, load_mentions, restrict_to_labels
from modeling_entity_typing.decision import decide
from modeling_entity_typing.evaluation.scoring import tune_threshold
from modeling_entity_typing.fivefine.label_phrases import label_phrases_for
from modeling_entity_typing.training import default_encoder


logger = logging.getLogger(__name__)

SCHEMAS = ("onto_fivefine", "onto_full", "figer", "few_nerd", "open_entity", "ufet")
SYSTEMS = ("general", "plain_encoder", "prototype")
HEADLINE = {"argmax_with_ancestors": "micro_f1", "threshold": "macro_f1"}
METRICS = ("strict_accuracy", "micro_f1", "macro_f1")
PROTOTYPE_SPLIT = 0  # FiveFine's 5-shot training split the OntoNotes and Few-NERD prototypes come from
IN_DOMAIN = "a general model trained on UFET crowd data (the UFET model) has seen this schema's training mentions"
LIMIT = (
    "the first N mentions of each test, dev and training file read (Few-NERD's after sampling, Open Entity's after "
    "dropping mentions without a general type); null: whole files"
)


@dataclass
class Schema:
    """One row's data: test (and dev) records, candidate labels and phrases, the rule, the prototypes' examples."""

    key: str
    name: str
    test_file: Path
    test: list[dict]
    labels: list[str]
    phrase_table: str | None = None  # FiveFine's table for `label_phrases_for`; None: the package's default rule
    rule: str = "argmax_with_ancestors"
    dev: list[dict] | None = None
    train: list[dict] | None = None  # records the prototypes are built from; None: `prototype_reason` says why
    train_file: Path | None = None
    prototype_reason: str | None = None
    notes: list[str] = field(default_factory=list)
    ufet_derived: bool = False  # UFET crowd data or a cut of it: the general model trained on its training split

    @property
    def phrases(self) -> dict[str, str]:
        """`{label: phrase}` the models type with, in label order."""
        return label_phrases_for(self.labels, self.phrase_table)


def records_of(path: Path, data_format: str, limit: int | None = None, **options) -> list[dict]:
    """The mention records of a file as dicts, the first `limit` of them with `limit`."""
    dataset = load_mentions(str(path), data_format, **options)
    return dataset.select(range(min(limit, len(dataset)))).to_list() if limit else dataset.to_list()


def sample_records(records: Sequence[dict], size: int, seed: int) -> list[dict]:
    """A fixed random sample of `size` records (all when fewer), in file order; the same for the same seed."""
    if size >= len(records):
        return list(records)
    return [records[index] for index in sorted(random.Random(seed).sample(range(len(records)), size))]


def restricted_records(path: Path, labels: Sequence[str], name: str) -> tuple[list[dict], int, int]:
    """UFET records keeping only `labels`, how many mentions the file has and how many were dropped for having none
    of `labels`."""
    kept, schema_report = restrict_to_labels(load_mentions(str(path), "ufet"), labels, name)
    return kept.to_list(), schema_report.records, schema_report.records_dropped


def check_same_as_ernie(records: Sequence[dict], ernie_file: Path) -> None:
    """Raise unless `records` are the labelled mentions of an Open Entity (ERNIE format) file, in order: same text,
    span and label set. That file is a JSON array, a format `load_mentions` does not read."""
    ernie = [item for item in json.loads(ernie_file.read_text(encoding="utf-8")) if item["labels"]]
    mine = [(r["text"], r["start"], r["end"], sorted(r["labels"])) for r in records]
    theirs = [(e["sent"], e["start"], e["end"], sorted(e["labels"])) for e in ernie]
    if mine != theirs:
        differ = next((index for index, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
        raise ValueError(
            f"{ernie_file}: its {len(theirs)} labelled mentions are not UFET's restricted to the general types "
            f"({len(mine)}); first difference at mention {differ}."
        )


# --------------------------------------------------------------------------------------------------------- schemas
def onto_fivefine(data_dir: Path, limit: int | None) -> Schema:
    """FiveFine's OntoNotes test (its 24-type vocabulary); prototypes from its 5-shot training split 0."""
    paths = baselines.onto_paths(data_dir)
    test = records_of(paths["test"], "ali", limit)
    schema = Schema(
        "onto_fivefine", "OntoNotes (FiveFine test)", paths["test"], test, baselines.read_labels(paths["labels"])
    )
    schema.phrase_table, schema.train_file = "ontonotes", paths["train"](PROTOTYPE_SPLIT)
    schema.train = records_of(schema.train_file, "ali", limit)
    schema.notes.append(
        f"prototypes: 5-shot training split {PROTOTYPE_SPLIT}, each mention an example of its finest label"
    )
    return schema


def onto_full(data_dir: Path, limit: int | None) -> Schema:
    """The full OntoNotes test (8,963 mentions, one type path each) over the 89-type ontology."""
    test_file = data_dir / "ontonotes" / "prompt-typing" / "test.txt"
    labels = baselines.read_labels(data_dir / "ontonotes" / "onto_ontology.txt")
    test = records_of(test_file, "tsv", limit)
    outside = set(labels_in_records(test)) - set(labels)
    if outside:
        raise ValueError(f"{test_file}: labels outside onto_ontology.txt: {sorted(outside)[:10]}")
    schema = Schema("onto_full", "OntoNotes (full test, 89 types)", test_file, test, labels, "ontonotes")
    schema.notes.append(
        "ontonotes/fgec-afet/test.json holds 8,546 mentions (AFET split its test into 949 dev + 8,546 test), not the "
        "full test; prompt-typing/test.txt holds all 8,963, with one type path each (ancestors implied)"
    )
    train_file = baselines.onto_paths(data_dir)["train"](PROTOTYPE_SPLIT)
    train = records_of(train_file, "ali", limit)
    train_labels = set(labels_in_records(train))
    if train_labels <= set(labels):
        schema.train, schema.train_file = train, train_file
        schema.notes.append(
            f"prototypes: FiveFine's 5-shot split {PROTOTYPE_SPLIT} (same label spelling), {len(train_labels)} of "
            f"{len(labels)} types: the prototype baseline can only predict those"
        )
    else:
        schema.prototype_reason = f"5-shot labels outside the ontology: {sorted(train_labels - set(labels))[:5]}"
    return schema


def figer(data_dir: Path, limit: int | None) -> Schema:
    """FIGER's 563-mention test; candidates: every label of its test and dev files (no type list in the data)."""
    folder = data_dir / "figer" / "e2e-entity-typing"
    files = {split: folder / f"{split}.json" for split in ("test", "dev")}
    labels = sorted({label for path in files.values() for label in labels_in(load_mentions(str(path), "afet"))})
    schema = Schema("figer", "FIGER (AFET Wiki test)", files["test"], records_of(files["test"], "afet", limit), labels)
    schema.prototype_reason = (
        "no FIGER training split in the data folder (figer/SOURCE.md: train.json not retrievable; dev.json is "
        "distantly labelled)"
    )
    schema.notes += [
        f"candidate labels: the {len(labels)} labels of test.json and dev.json (FIGER's type list is not in the data "
        "folder)",
        "some test mentions have two type paths (e.g. /organization and /government_agency); the argmax rule predicts "
        "one path",
    ]
    return schema


def few_nerd(data_dir: Path, limit: int | None, sample: int, seed: int) -> Schema:
    """Few-NERD INTER test (17 fine types), a fixed random sample of its entities."""
    test_file = data_dir / "few_nerd" / "structshot-inter-test" / "big_test.txt.gz"
    everything = records_of(test_file, "bio")  # tags `B-coarse_fine` -> `/coarse/fine` (`few_nerd_label`)
    labels = sorted(labels_in_records(everything))
    test = sample_records(everything, sample, seed)[:limit]
    schema = Schema("few_nerd", "Few-NERD (INTER test)", test_file, test, labels, "few_nerd")
    schema.notes += [
        f"{len(everything)} entities, {len(labels)} fine types; a random sample of {min(sample, len(everything))} "
        f"(seed {seed}); tags `B-coarse_fine` read as `/coarse/fine`, coarse an ancestor",
        "entities as load_mentions reads BIO tags: an I- tag after a mention of another type starts a new one "
        "(SOURCE.md counts 28,339 B- tags)",
    ]
    train_file = data_dir / "fivefine" / "alifet" / "fewnerd" / f"fewnerd_train_fewshot5_{PROTOTYPE_SPLIT}.json"
    train = [record for record in records_of(train_file, "ali") if set(record["labels"]) <= set(labels)]
    missing = set(labels) - set(labels_in_records(train))
    if missing:
        schema.prototype_reason = f"{len(missing)} test types have no 5-shot example: {sorted(missing)[:5]}"
    else:
        schema.train, schema.train_file = train[:limit], train_file
        schema.notes.append(
            f"prototypes: FiveFine's Few-NERD 5-shot split {PROTOTYPE_SPLIT}, its {len(train)} mentions of the test "
            "types"
        )
    return schema


def open_entity(data_dir: Path, limit: int | None) -> Schema:
    """Open Entity's 9 general types: UFET crowd data restricted to them, mentions left with none dropped."""
    folder = data_dir / "open_entity_ernie"
    labels = baselines.read_labels(folder / "types.txt")
    if set(labels) != set(ufet_types(data_dir)[:9]):
        raise ValueError(f"open_entity_ernie/types.txt {labels} are not UFET's 9 general types")
    splits, dropped = {}, []
    for split in ("test", "dev", "train"):
        records, total, left_out = restricted_records(
            data_dir / "ufet" / f"{split}.json", labels, f"Open Entity {split}"
        )
        check_same_as_ernie(records, folder / f"{split}.json")
        splits[split] = records[:limit]
        dropped.append(f"{split} {left_out} of {total}")
    schema = Schema("open_entity", "Open Entity (9 general types)", folder / "test.json", splits["test"], labels)
    schema.rule, schema.dev, schema.train, schema.train_file = (
        "threshold",
        splits["dev"],
        splits["train"],
        folder / "train.json",
    )
    schema.notes += [
        "read as ufet/{train,dev,test}.json restricted to the 9 general types, checked identical to "
        "open_entity_ernie/*.json (a JSON array, which load_mentions does not read)",
        f"mentions dropped for having no general type: {', '.join(dropped)}",
        "prototypes: each training mention an example of each of its general types",
        IN_DOMAIN,
    ]
    schema.ufet_derived = True
    return schema


def ufet(data_dir: Path, limit: int | None) -> Schema:
    """UFET crowd test over all 10,331 types; prototypes from the crowd training file."""
    files = {split: data_dir / "ufet" / f"{split}.json" for split in ("test", "dev", "train")}
    test = records_of(files["test"], "ufet", limit)
    schema = Schema("ufet", "UFET (crowd test)", files["test"], test, ufet_types(data_dir), rule="threshold")
    schema.dev, schema.train = records_of(files["dev"], "ufet", limit), records_of(files["train"], "ufet", limit)
    schema.train_file = files["train"]
    schema.notes += ["prototypes: each training mention an example of each of its types", IN_DOMAIN]
    schema.ufet_derived = True
    return schema


def labels_in_records(records: Sequence[dict]) -> list[str]:
    """Labels used by records, in order of first appearance."""
    return list(dict.fromkeys(label for record in records for label in record["labels"]))


def load_schema(key: str, data_dir: Path, limit: int | None, few_nerd_sample: int, seed: int) -> Schema:
    """The schema called `key` (one of `SCHEMAS`), read from `data_dir`."""
    if key == "few_nerd":
        return few_nerd(data_dir, limit, few_nerd_sample, seed)
    loaders: dict[str, Callable[[Path, int | None], Schema]] = {
        "onto_fivefine": onto_fivefine,
        "onto_full": onto_full,
        "figer": figer,
        "open_entity": open_entity,
        "ufet": ufet,
    }
    if key not in loaders:
        raise ValueError(f"Unknown schema {key!r}; choose from {SCHEMAS}.")
    return loaders[key](data_dir, limit)


# --------------------------------------------------------------------------------------------------------- systems
class CachedVectors:
    """Mention vectors of one system by `(text, start, end)`, each computed once across schemas (Open Entity's
    mentions are UFET's) and in length order, so that batches pad little."""

    def __init__(self, embed: Callable[[list[dict]], torch.Tensor]):
        self.embed, self.vectors = embed, {}

    def __call__(self, records: Sequence[dict]) -> torch.Tensor:
        """`(len(records), dim)` vectors, computing only those not seen before."""
        keys = [(record["text"], record["start"], record["end"]) for record in records]
        missing = {key: record for key, record in zip(keys, records) if key not in self.vectors}
        if missing:
            ordered = sorted(missing, key=lambda key: len(key[0]))
            with torch.inference_mode():
                computed = self.embed([missing[key] for key in ordered])
            self.vectors.update(zip(ordered, computed))
        return torch.stack([self.vectors[key] for key in keys])


def typing_model(path: str, phrases: dict[str, str]) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A FiveFine checkpoint with `phrases` as its label set, or a plain encoder's zero-shot FiveFine model (encoder
    type space), as `bench_fet_baselines.py --method zero_shot_fivefine` builds them; with its tokenizer."""
    model, tokenizer = BertForPhraseTypeTyping.for_labels(
        path, phrases, new_model_overrides={"nwp_loss_weight": 0.0, "type_space": "encoder"}
    )
    return model.eval(), tokenizer


def model_probabilities(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    vectors: CachedVectors,
    phrases: dict[str, str],
    splits: Sequence[Sequence[dict]],
) -> list[torch.Tensor]:
    """Type probabilities `(mentions, labels)` of each split's records over `phrases`: sigmoid of
    `calibrated_scores(embed_mentions, type_embeddings(), config)`, what the pipeline scores."""
    model.set_label_set(phrases, tokenizer)
    with torch.inference_mode():
        types = model.type_embeddings()
        return [calibrated_scores(vectors(records), types, model.config).sigmoid() for records in splits]


def prototype_cosines(
    train_vectors: torch.Tensor, train_labels: Sequence[str], vectors: torch.Tensor
) -> tuple[list[str], torch.Tensor]:
    """`(types, cosines)`: the types with examples (sorted) and each vector's cosine to their prototypes (mean
    training vector), as `predict_prototype` scores them; one pass over the examples, for 10k-type label sets."""
    types = sorted(set(train_labels))
    index = {label: row for row, label in enumerate(types)}
    rows = torch.tensor([index[label] for label in train_labels])
    sums = torch.zeros(len(types), train_vectors.size(1)).index_add_(0, rows, train_vectors)
    prototypes = sums / torch.bincount(rows, minlength=len(types)).unsqueeze(1)
    return types, F.normalize(vectors, dim=-1) @ F.normalize(prototypes, dim=-1).T


def decided(
    schema: Schema, labels: Sequence[str], test_scores: torch.Tensor, dev_scores: torch.Tensor | None = None
) -> dict:
    """Scores of one system on a schema under its rule, from `(mentions, labels)` scores (probabilities, or cosines
    for the prototype): the argmax label plus ancestors, or the threshold rule at the threshold dev data chooses."""
    result = {}
    if schema.rule == "argmax_with_ancestors":
        predicted = [baselines.with_ancestors(labels[index]) for index in test_scores.argmax(-1).tolist()]
    else:
        threshold, on_dev = tune_threshold(dev_scores, [record["labels"] for record in schema.dev], labels)
        predicted = [[item["label"] for item in decide(row, labels, "threshold", threshold)] for row in test_scores]
        result = {"threshold": threshold, "dev_macro_f1": on_dev["macro_f1"]}
    scores = baselines.score(predicted, schema.test)
    return {**{metric: scores[metric] for metric in METRICS}, **result}


def prototype_system(schema: Schema, frozen: CachedVectors) -> dict:
    """The frozen prototype baseline: nearest prototype (single-path schemas, `predict_prototype` on finest labels),
    or cosines to the prototypes under the threshold rule (multi-label schemas, every label of a mention). A label
    without a training example has no prototype and is never predicted; both counts are reported."""
    train_vectors = frozen(schema.train)
    if schema.rule == "argmax_with_ancestors":
        train_labels = [baselines.finest_label(record["labels"]) for record in schema.train]
        finest = baselines.predict_prototype(train_vectors, train_labels, frozen(schema.test))
        scores = baselines.score([baselines.with_ancestors(label) for label in finest], schema.test)
        result, types = {metric: scores[metric] for metric in METRICS}, set(train_labels)
    else:
        pairs = [(row, label) for row, record in enumerate(schema.train) for label in record["labels"]]
        evaluated = torch.cat([frozen(schema.test), frozen(schema.dev)])
        types, cosines = prototype_cosines(
            train_vectors[[row for row, _ in pairs]], [label for _, label in pairs], evaluated
        )
        result = {
            **decided(schema, types, cosines[: len(schema.test)], cosines[len(schema.test) :]),
            "threshold_on": "cosine",
        }
    return {**result, "types_with_prototype": len(types), "types_without_prototype": len(schema.labels) - len(types)}


def zero_shot_rows(
    model_path: str | Path,
    encoder: str | Path | None = None,
    data_dir: str | Path = DEFAULT_DATA_DIR,
    schemas: Sequence[str] = SCHEMAS,
    limit: int | None = None,
    few_nerd_sample: int = 2000,
    seed: int = 0,
) -> list[dict]:
    """One row per schema: the general model, the plain encoder zero-shot and the prototype baseline, scored alike;
    callable from other scripts (the model card's table)."""
    encoder = str(encoder or default_encoder())
    data_dir = Path(data_dir)
    loaded = [load_schema(key, data_dir, limit, few_nerd_sample, seed) for key in tqdm(schemas, desc="schemas")]
    first = loaded[0].phrases
    models = {"general": typing_model(str(model_path), first), "plain_encoder": typing_model(encoder, first)}
    vectors = {
        name: CachedVectors(lambda r, m=m, t=t: baselines.mask_vectors(m, t, r)) for name, (m, t) in models.items()
    }
    encoder_model, encoder_tokenizer = (
        AutoModel.from_pretrained(encoder).eval(),
        AutoTokenizer.from_pretrained(encoder),
    )
    frozen = CachedVectors(lambda records: baselines.frozen_vectors(encoder_model, encoder_tokenizer, records))
    rows = []
    for schema in tqdm(loaded, desc="rows"):
        started = time.perf_counter()
        labels = list(schema.phrases)
        systems = {}
        for name, (model, tokenizer) in models.items():
            splits = [schema.test] + ([schema.dev] if schema.rule == "threshold" else [])
            systems[name] = decided(
                schema, labels, *model_probabilities(model, tokenizer, vectors[name], schema.phrases, splits)
            )
        systems["prototype"] = prototype_system(schema, frozen) if schema.train is not None else None
        row = {
            "schema": schema.key,
            "name": schema.name,
            "test_file": str(schema.test_file),
            "mentions": len(schema.test),
            "labels": len(labels),
            "rule": schema.rule,
            "headline": HEADLINE[schema.rule],
            "systems": systems,
            "prototype_train_file": str(schema.train_file) if schema.train is not None else None,
            "notes": schema.notes,
            "ufet_derived": schema.ufet_derived,
            "seconds": round(time.perf_counter() - started, 1),
        }
        if schema.train is None:
            row["prototype_reason"] = schema.prototype_reason
            row["notes"] = [*schema.notes, f"prototype: null, {schema.prototype_reason}"]
        logger.info(f"{schema.key}: {markdown_row(row)}")
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------------- output
def cell(system: dict | None, headline: str) -> str:
    """A system's headline score in percent (with its threshold where it has one), `—` for none."""
    if system is None:
        return "—"
    threshold = f" (t={system['threshold']:.2f})" if "threshold" in system else ""
    return f"{100 * system[headline]:.2f}{threshold}"


def markdown_row(row: dict) -> str:
    """One row of `markdown_table`: its sizes, headline metric and each system's cell."""
    systems = [cell(row["systems"][name], row["headline"]) for name in SYSTEMS]
    metric = {"micro_f1": "Mi-F1", "macro_f1": "Ma-F1"}[row["headline"]]
    return " | ".join([f"| {row['schema']}", str(row["mentions"]), str(row["labels"]), metric, *systems]) + " |"


def markdown_table(rows: Sequence[dict]) -> str:
    """The rows as a markdown table, headline metric in percent."""
    header = "| schema | mentions | labels | metric | general | plain encoder zero-shot | prototype |"
    return "\n".join([header, "|---|---|---|---|---|---|---|", *(markdown_row(row) for row in rows)])


def main() -> None:
    """Run the schemas given on the command line, write the JSON report and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="FiveFine checkpoint (e.g. the UFET model).")
    parser.add_argument("--encoder", default=None, help="Plain encoder (default: the bundled MiniLM).")
    parser.add_argument("--data_dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--schemas", nargs="+", choices=SCHEMAS, default=list(SCHEMAS))
    parser.add_argument("--few_nerd_sample", type=int, default=2000, help="Few-NERD test entities sampled.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the Few-NERD sample.")
    parser.add_argument("--limit", type=int, default=None, help="Smoke runs: the first N mentions of each file read.")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if (args.limit is not None and args.limit < 1) or args.few_nerd_sample < 1:
        parser.error("--limit and --few_nerd_sample must be positive.")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    rows = zero_shot_rows(
        args.model, args.encoder, args.data_dir, args.schemas, args.limit, args.few_nerd_sample, args.seed
    )
    report(
        {
            "command": " ".join(["python", *sys.argv]),
            "machine": machine(),
            "model": args.model,
            "encoder": args.encoder or default_encoder(),
            "seed": args.seed,
            "few_nerd_sample": args.few_nerd_sample,
            "limit": args.limit,
            "limit_means": LIMIT,
            "rows": rows,
            "seconds": round(time.perf_counter() - started, 1),
        },
        args.output,
    )
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
