"""Entity-linked sentences -> groups of mentions that should get similar types (Cross-C's distant supervision).

Cross-C (Han et al., ACL 2022, §3) pre-trains a typer contrastively on mentions grouped by heuristic
rules over an entity-linked corpus. The reference code has no such step; this module is a re-implementation.

* rule `"pair"`: the same unordered entity pair (a, b) in two or more different sentences -> the mentions of a in
  those sentences form one group, and the mentions of b another.
* rule `"relation"` (needs a KB): (h, r, t1), (h, r, t2) -> the mentions of t1 and t2 form a group (same relation,
  shared head); likewise a shared tail groups the heads. At least two of the entities must occur in the corpus.

Every group has >= 2 mentions in >= 2 distinct sentences. Sentences whose text repeats an earlier one are skipped.

**Corpus format** (`format="jsonl"`): JSON lines, one sentence per line, character offsets, end exclusive::

    {"id": "en-0003", "text": "Paris is the capital of France.", "lang": "en",
     "mentions": [{"entity": "Q90", "start": 0, "end": 5}, {"entity": "Q142", "start": 24, "end": 30}]}

`id` (default `<file stem>-<line>`) and `lang` (default: the `lang` argument, else `"en"`) are optional; a mention may
carry a linker confidence `"score"`, used by `min_link_score`. `format="ernie"` reads the Open Entity files of
ERNIE / KnowBERT / LUKE (one JSON array; per element `sent` and `ents` = `[[qid, start, end, score], ...]`): the links
become the mentions (the typed mention `start`/`end`/`labels` is not a link and is ignored); ids are
`<file stem>-<index>` and errors name the array element, `file[index]`. `.gz` works for both.

**KB format** (`load_kb`): `head<TAB>relation<TAB>tail` lines (`#` starts a comment line) or JSON lines
`{"head", "relation", "tail"}`.

**Output** (`mine_positive_groups`): one row per (group, mention), `MENTION_FEATURES`; `id` is
`<sentence id>:<start>-<end>#<group id>`, group ids are `pair:<a>|<b>:<a>` (a < b) and
`relation:<r>:head=<h>` / `relation:<r>:tail=<t>`. Rows come in rule order, then group id, sentence, start.

**Memory**: per-sentence keys are computed with `Dataset.map(batched=True, num_proc=...)` (or lazily over a streamed
`IterableDataset`), but the indexes are Python dicts in memory: every entity pair of the corpus with its sentence
positions, one hash and id per sentence, the KB's (head, relation) and (relation, tail) sets, and the texts of the
sentences that end up in a group (a streamed corpus is read twice instead of held).
"""

import hashlib
import itertools
import json
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Literal, get_args

import datasets

from ..data.mention_data import MentionDataError, _check_span, _json_lines, _lines


logger = logging.getLogger(__name__)

CorpusFormat = Literal["jsonl", "ernie"]
CORPUS_FORMATS: tuple[str, ...] = get_args(CorpusFormat)
RULES: tuple[str, ...] = ("pair", "relation")
DEFAULT_LANG = "en"
CORPUS_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "lang": datasets.Value("string"),
        "mentions": datasets.List(
            {"entity": datasets.Value("string"), "start": datasets.Value("int32"), "end": datasets.Value("int32")}
        ),
    }
)
KB_FEATURES = datasets.Features(
    {"head": datasets.Value("string"), "relation": datasets.Value("string"), "tail": datasets.Value("string")}
)
MENTION_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "start": datasets.Value("int32"),
        "end": datasets.Value("int32"),
        "lang": datasets.Value("string"),
        "entity": datasets.Value("string"),
        "group_id": datasets.Value("string"),
        "rule": datasets.Value("string"),
        "source_id": datasets.Value("string"),
    }
)


# ------------------------------------------------------------------------------------------------ corpus readers
@dataclass
class LinkReport:
    """Per corpus file: sentences read, links kept, links dropped below `min_link_score` (refreshed on every read)."""

    files: dict[str, dict[str, int]] = field(default_factory=dict)

    def total(self, key: str) -> int:
        return sum(counts[key] for counts in self.files.values())


def _require(obj: dict, key: str, kind: type | tuple, where: str, fmt: str):
    if key not in obj:
        raise MentionDataError(
            f"{where}: missing key {key!r} (keys present: {sorted(obj)}); is this really a {fmt!r} corpus file? "
            f"Formats: {', '.join(CORPUS_FORMATS)}."
        )
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise MentionDataError(f"{where}: {key!r} must be {expected}, got {type(value).__name__} {value!r:.60}.")
    return value


def _link(text: str, entity, start, end, where: str) -> dict:
    if not isinstance(entity, str) or not entity.strip():
        raise MentionDataError(f"{where}: the entity id must be a non-empty string, got {entity!r:.60}.")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        raise MentionDataError(f"{where}: start and end must be integers, got {start!r}, {end!r}.")
    _check_span(text, start, end, where)
    return {"entity": entity, "start": start, "end": end}


def _kept(score, min_link_score: float | None, where: str) -> bool:
    if score is not None and (not isinstance(score, (int, float)) or isinstance(score, bool)):
        raise MentionDataError(f"{where}: the link score must be a number, got {score!r:.60}.")
    return min_link_score is None or score is None or score >= min_link_score


def read_entity_linked_jsonl(
    path: Path, min_link_score: float | None = None, lang: str = DEFAULT_LANG, counts: dict | None = None
) -> Iterator[dict]:
    """This package's corpus format (module docstring); `counts` receives sentences / links / links_below_min_score."""
    counts = {} if counts is None else counts
    counts.update(sentences=0, links=0, links_below_min_score=0)
    for line_number, obj in _json_lines(path):
        where = f"{path}:{line_number}"
        text = _require(obj, "text", str, where, "jsonl")
        mentions = []
        for index, mention in enumerate(_require(obj, "mentions", list, where, "jsonl")):
            here = f"{where} (mention {index})"
            if not isinstance(mention, dict):
                raise MentionDataError(f"{here}: each mention must be an object with 'entity', 'start', 'end'.")
            missing = [key for key in ("entity", "start", "end") if key not in mention]
            if missing:
                raise MentionDataError(f"{here}: missing {missing}; a mention is {{'entity', 'start', 'end'}}.")
            link = _link(text, mention["entity"], mention["start"], mention["end"], here)
            if _kept(mention.get("score"), min_link_score, here):
                mentions.append(link)
            else:
                counts["links_below_min_score"] += 1
        sentence_lang = _require(obj, "lang", str, where, "jsonl") if "lang" in obj else lang
        sentence_id = _require(obj, "id", (str, int), where, "jsonl") if "id" in obj else f"{path.stem}-{line_number}"
        counts["sentences"] += 1
        counts["links"] += len(mentions)
        yield {"id": str(sentence_id), "text": text, "lang": sentence_lang, "mentions": mentions}


def read_ernie(
    path: Path, min_link_score: float | None = None, lang: str = DEFAULT_LANG, counts: dict | None = None
) -> Iterator[dict]:
    """ERNIE / Open Entity JSON array (module docstring); the whole array is parsed when reading starts."""
    counts = {} if counts is None else counts
    counts.update(sentences=0, links=0, links_below_min_score=0)
    text = "".join(line for _, line in _lines(path))  # bad bytes and a cut-off .gz fail with file:line here
    try:
        elements = json.loads(text)
    except json.JSONDecodeError as error:
        message = f"{path}:{error.lineno}: not valid JSON ({error.msg}); the 'ernie' format is one JSON array."
        raise MentionDataError(message) from None
    if not isinstance(elements, list):
        raise MentionDataError(
            f"{path}: expected a JSON array of objects (ERNIE / Open Entity), got {type(elements).__name__}; "
            "for one sentence per line use format='jsonl'."
        )
    for index, obj in enumerate(elements):
        where = f"{path}[{index}]"
        if not isinstance(obj, dict):
            raise MentionDataError(f"{where}: expected an object with 'sent' and 'ents', got {type(obj).__name__}.")
        text = _require(obj, "sent", str, where, "ernie")
        mentions = []
        for number, link in enumerate(_require(obj, "ents", list, where, "ernie")):
            here = f"{where} (link {number})"
            if not isinstance(link, list) or len(link) != 4:
                raise MentionDataError(f"{here}: each link must be [entity_id, start, end, score], got {link!r:.80}.")
            entity, start, end, score = link
            checked = _link(text, entity, start, end, here)
            if _kept(score, min_link_score, here):
                mentions.append(checked)
            else:
                counts["links_below_min_score"] += 1
        counts["sentences"] += 1
        counts["links"] += len(mentions)
        yield {"id": f"{path.stem}-{index}", "text": text, "lang": lang, "mentions": mentions}


CORPUS_READERS = {"jsonl": read_entity_linked_jsonl, "ernie": read_ernie}


def detect_corpus_format(path: str | PathLike) -> str:
    """`"ernie"` when the file starts with a JSON array, `"jsonl"` when it starts with an object."""
    first = next((char for _, line in _lines(Path(path)) for char in line if not char.isspace()), None)
    if first == "[":
        return "ernie"
    if first == "{":
        return "jsonl"
    raise MentionDataError(f"{path}:1: cannot tell the corpus format; pass format= one of {CORPUS_FORMATS}.")


def load_entity_linked(
    paths: str | PathLike | Sequence[str | PathLike],
    format: str | None = None,
    streaming: bool = False,
    min_link_score: float | None = None,
    lang: str | None = None,
    report: LinkReport | None = None,
) -> datasets.Dataset | datasets.IterableDataset:
    """Entity-linked sentences `{id, text, lang, mentions: [{entity, start, end}]}` from corpus files.

    `format=None` detects each file's format; `lang` is the language of sentences that name none (default "en");
    links scoring below `min_link_score` are dropped, counted per file in `report` and logged. `streaming=True`
    returns an `IterableDataset` that reads the files each time it is iterated.
    """
    paths = [paths] if isinstance(paths, (str, PathLike)) else list(paths)
    if not paths:
        raise ValueError("No corpus files given.")
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"No corpus file at {path}.")
    if format is not None and format not in CORPUS_READERS:
        raise ValueError(f"Unknown corpus format {format!r}; choose one of {', '.join(CORPUS_FORMATS)}.")
    report = LinkReport() if report is None else report
    lang = lang or DEFAULT_LANG

    def generate(files: list[str]):
        for file in files:
            counts: dict[str, int] = {}
            reader = CORPUS_READERS[format or detect_corpus_format(file)]
            yield from reader(Path(file), min_link_score=min_link_score, lang=lang, counts=counts)
            report.files[file] = counts
            if counts["links_below_min_score"]:
                logger.warning(
                    f"{file}: {counts['links_below_min_score']} links scored below min_link_score={min_link_score} "
                    f"and were dropped; {counts['links']} links in {counts['sentences']} sentences kept."
                )

    files = [str(path) for path in paths]
    if streaming:
        return datasets.IterableDataset.from_generator(generate, features=CORPUS_FEATURES, gen_kwargs={"files": files})
    records = list(generate(files))
    if not records:
        raise MentionDataError(f"{', '.join(files)}: no sentences found.")
    return datasets.Dataset.from_list(records, features=CORPUS_FEATURES)


def load_kb(path: str | PathLike) -> datasets.Dataset:
    """(head, relation, tail) triples from TSV or JSON lines (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No KB file at {path}.")
    triples = []
    for line_number, line in _lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        where = f"{path}:{line_number}"
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as error:
                raise MentionDataError(f"{where}: not valid JSON ({error.msg}); one triple per line.") from None
            fields = [obj.get(key) if isinstance(obj, dict) else None for key in ("head", "relation", "tail")]
        else:
            fields = line.rstrip("\n").split("\t")
        if len(fields) != 3 or not all(isinstance(value, str) and value.strip() for value in fields):
            raise MentionDataError(
                f'{where}: expected \'head<TAB>relation<TAB>tail\' or {{"head", "relation", "tail"}} with '
                f"three non-empty strings, got {line.strip()!r:.80}."
            )
        triples.append(dict(zip(("head", "relation", "tail"), (value.strip() for value in fields))))
    if not triples:
        raise MentionDataError(f"{path}: no triples found.")
    return datasets.Dataset.from_list(triples, features=KB_FEATURES)


# ------------------------------------------------------------------------------------------------ mining report
@dataclass
class RuleReport:
    """One rule's yield. `candidates`/`skipped` count keys: entity pairs (`pair`) or KB (entity, relation) keys."""

    groups: int = 0
    mentions: int = 0
    sentences_used: int = 0
    candidates: int = 0
    skipped: Counter = field(default_factory=Counter)
    groups_subsampled: int = 0
    mentions_subsampled_away: int = 0
    note: str | None = None


@dataclass
class MiningReport:
    """Corpus counts and one `RuleReport` per requested rule; `to_dict()` is JSON-ready."""

    sentences: int = 0
    duplicate_sentences: int = 0
    duplicate_sentence_mentions: int = 0
    sentences_without_links: int = 0
    mentions: int = 0
    kb_triples: int = 0
    rules: dict[str, RuleReport] = field(default_factory=dict)

    def to_dict(self) -> dict:
        rules = {name: {**vars(rule), "skipped": dict(rule.skipped)} for name, rule in self.rules.items()}
        return {**{key: value for key, value in vars(self).items() if key != "rules"}, "rules": rules}

    def log(self) -> None:
        logger.info(
            f"Corpus: {self.sentences} sentences, {self.mentions} links; {self.duplicate_sentences} repeated "
            f"sentences skipped ({self.duplicate_sentence_mentions} links), {self.sentences_without_links} "
            "sentences without links."
        )
        for name, rule in self.rules.items():
            if rule.note:
                logger.info(f"rule {name!r}: {rule.note}")
                continue
            logger.info(
                f"rule {name!r}: {rule.groups} groups, {rule.mentions} mentions from {rule.sentences_used} sentences; "
                f"{rule.candidates} candidate keys, skipped {dict(rule.skipped)}; {rule.mentions_subsampled_away} "
                f"mentions subsampled away in {rule.groups_subsampled} groups."
            )


# ------------------------------------------------------------------------------------------------ mining
@dataclass(frozen=True)
class _Group:
    group_id: str
    rule: str
    entities: frozenset[str]
    positions: tuple[int, ...]  # row positions of the corpus, ascending


def _sentence_keys(batch: dict[str, list], with_pairs: bool) -> dict[str, list]:
    """Per sentence: its distinct entities, their unordered pairs (sorted), a hash of its text."""
    entities = [sorted({mention["entity"] for mention in mentions}) for mentions in batch["mentions"]]
    return {
        "entities": entities,
        "pairs": [
            [list(pair) for pair in itertools.combinations(names, 2)] if with_pairs else [] for names in entities
        ],
        "text_hash": [hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest() for text in batch["text"]],
        "num_mentions": [len(mentions) for mentions in batch["mentions"]],
    }


def _kb_groups(kb: datasets.Dataset | Iterable[Sequence[str]], report: MiningReport) -> dict[str, frozenset[str]]:
    """KB keys with >= 2 partners: `relation:<r>:head=<h>` -> tails, `relation:<r>:tail=<t>` -> heads."""
    by_head, by_tail = defaultdict(set), defaultdict(set)
    if isinstance(kb, datasets.Dataset):
        triples = (triple for batch in kb.iter(batch_size=10_000) for triple in zip(*batch.values()))
    else:
        triples = iter(kb)
    for triple in triples:
        if len(triple) != 3:
            raise ValueError(f"KB triples must be (head, relation, tail), got {triple!r:.80}.")
        head, relation, tail = triple
        report.kb_triples += 1
        by_head[(head, relation)].add(tail)
        by_tail[(relation, tail)].add(head)
    groups = {f"relation:{r}:head={h}": frozenset(tails) for (h, r), tails in by_head.items() if len(tails) >= 2}
    groups.update({f"relation:{r}:tail={t}": frozenset(heads) for (r, t), heads in by_tail.items() if len(heads) >= 2})
    return groups


def _index_corpus(keys: datasets.Dataset | datasets.IterableDataset, kb_entities: set[str], report: MiningReport):
    """One pass over the per-sentence keys: pair -> positions, KB entity -> positions; skips repeated texts."""
    pair_index, entity_index = defaultdict(list), defaultdict(list)
    seen_ids, seen_texts = {}, set()
    position = 0
    for batch in keys.iter(batch_size=1_000):
        for id_, names, pairs, digest, count in zip(
            batch["id"], batch["entities"], batch["pairs"], batch["text_hash"], batch["num_mentions"]
        ):
            if id_ in seen_ids:
                raise ValueError(
                    f"Sentence id {id_!r} appears twice (corpus rows {seen_ids[id_]} and {position}); ids must be "
                    "unique across all corpus files (rename one file: default ids are '<file stem>-<line>')."
                )
            seen_ids[id_] = position
            report.sentences += 1
            if digest in seen_texts:
                report.duplicate_sentences += 1
                report.duplicate_sentence_mentions += count
            else:
                seen_texts.add(digest)
                report.mentions += count
                report.sentences_without_links += int(count == 0)
                for a, b in pairs:
                    pair_index[(a, b)].append(position)
                for name in names:
                    if name in kb_entities:
                        entity_index[name].append(position)
            position += 1
    return pair_index, entity_index


def _pair_groups(pair_index: dict, rule: RuleReport) -> list[_Group]:
    groups = []
    rule.candidates = len(pair_index)
    for (a, b), positions in pair_index.items():
        if len(positions) < 2:
            rule.skipped["pair_in_one_sentence"] += 1
            continue
        for name in (a, b):
            groups.append(_Group(f"pair:{a}|{b}:{name}", "pair", frozenset([name]), tuple(positions)))
    return groups


def _relation_groups(kb_groups: dict[str, frozenset[str]], entity_index: dict, rule: RuleReport) -> list[_Group]:
    groups = []
    rule.candidates = len(kb_groups)
    for group_id, members in kb_groups.items():
        present = [name for name in members if entity_index.get(name)]
        if len(present) < 2:
            rule.skipped["fewer_than_2_entities_in_corpus"] += 1
            continue
        positions = sorted({position for name in present for position in entity_index[name]})
        if len(positions) < 2:
            rule.skipped["fewer_than_2_sentences"] += 1
            continue
        groups.append(_Group(group_id, "relation", frozenset(present), tuple(positions)))
    return groups


def _fetch_sentences(corpus: datasets.Dataset | datasets.IterableDataset, positions: list[int]) -> dict[int, dict]:
    """The corpus rows at `positions` (ascending); a streamed corpus is read once more."""
    if isinstance(corpus, datasets.Dataset):
        return dict(zip(positions, corpus.select(positions)))
    wanted = set(positions)
    return {position: row for position, row in enumerate(corpus) if position in wanted}


def _subsample(rows: list[dict], size: int, rng: random.Random) -> list[dict]:
    """`size` rows at random, always from >= 2 sentences, in their original order."""
    order = rng.sample(range(len(rows)), len(rows))
    first = order[0]
    second = next(i for i in order if rows[i]["text_id"] != rows[first]["text_id"])
    chosen = [first, second] + [i for i in order if i not in (first, second)][: size - 2]
    return [rows[i] for i in sorted(chosen)]


def _group_rows(group: _Group, sentences: dict[int, dict]) -> list[dict]:
    rows = []
    for position in group.positions:
        sentence = sentences[position]
        for mention in sorted(sentence["mentions"], key=lambda m: (m["start"], m["end"])):
            if mention["entity"] in group.entities:
                rows.append(
                    {
                        "id": f"{sentence['id']}:{mention['start']}-{mention['end']}#{group.group_id}",
                        "text": sentence["text"],
                        "start": mention["start"],
                        "end": mention["end"],
                        "lang": sentence["lang"],
                        "entity": mention["entity"],
                        "group_id": group.group_id,
                        "rule": group.rule,
                        "source_id": None,
                        "text_id": position,
                    }
                )
    return rows


def _check_rules(rules: Sequence[str], kb, max_group_size: int | None) -> list[str]:
    rules = [rules] if isinstance(rules, str) else list(rules)
    unknown = [rule for rule in rules if rule not in RULES]
    if not rules or unknown or len(set(rules)) != len(rules):
        raise ValueError(f"`rules` must be distinct names from {RULES}, got {rules!r}.")
    if rules == ["relation"] and kb is None:
        raise ValueError("Rule 'relation' needs a KB: pass kb=load_kb('triples.tsv'), or add rule 'pair'.")
    if max_group_size is not None and max_group_size < 2:
        raise ValueError(f"`max_group_size` must be at least 2 (a group needs two mentions), got {max_group_size}.")
    return rules


def mine_positive_groups(
    corpus: datasets.Dataset | datasets.IterableDataset,
    kb: datasets.Dataset | Iterable[Sequence[str]] | None = None,
    rules: Sequence[str] = RULES,
    num_proc: int | None = None,
    max_group_size: int | None = None,
    seed: int = 0,
) -> tuple[datasets.Dataset, MiningReport]:
    """Mention examples grouped by Cross-C's entity-pair rules (module docstring), and what each rule yielded.

    `corpus` comes from `load_entity_linked`; `kb` from `load_kb` (or any iterable of triples). Without a KB the
    `relation` rule is skipped with a note. `max_group_size` keeps that many mentions of a larger group, drawn with
    `random.Random(f"{seed}:{group_id}")`. Output and row order do not depend on `num_proc`.
    """
    rules = _check_rules(rules, kb, max_group_size)
    report = MiningReport(rules={rule: RuleReport() for rule in rules})
    if "relation" in rules and kb is None:
        report.rules["relation"].note = "skipped: no KB given (pass kb=load_kb(path))"
        logger.info("Rule 'relation' skipped: no KB given.")
    if kb is not None and "relation" not in rules:
        logger.info("A KB was given but rule 'relation' was not requested; the KB is not used.")
    kb_groups = _kb_groups(kb, report) if "relation" in rules and kb is not None else {}
    kb_entities = {name for members in kb_groups.values() for name in members}

    map_options = {
        "batched": True,
        "fn_kwargs": {"with_pairs": "pair" in rules},
        "remove_columns": ["text", "lang", "mentions"],
    }
    if isinstance(corpus, datasets.IterableDataset):
        if num_proc:
            logger.info("num_proc is ignored for a streamed corpus (an IterableDataset is mapped lazily).")
        keys = corpus.map(_sentence_keys, **map_options)
    else:
        keys = corpus.map(_sentence_keys, num_proc=num_proc, desc="Entity keys per sentence", **map_options)
    pair_index, entity_index = _index_corpus(keys, kb_entities, report)

    groups = []
    if "pair" in rules:
        groups += sorted(_pair_groups(pair_index, report.rules["pair"]), key=lambda g: g.group_id)
    if kb_groups:
        groups += sorted(_relation_groups(kb_groups, entity_index, report.rules["relation"]), key=lambda g: g.group_id)
    del pair_index, entity_index
    sentences = _fetch_sentences(corpus, sorted({position for group in groups for position in group.positions}))

    rows, used = [], defaultdict(set)
    for group in groups:
        group_rows, rule = _group_rows(group, sentences), report.rules[group.rule]
        if max_group_size is not None and len(group_rows) > max_group_size:
            rule.groups_subsampled += 1
            rule.mentions_subsampled_away += len(group_rows) - max_group_size
            group_rows = _subsample(group_rows, max_group_size, random.Random(f"{seed}:{group.group_id}"))
        rule.groups += 1
        rule.mentions += len(group_rows)
        used[group.rule].update(row.pop("text_id") for row in group_rows)
        rows += group_rows
    for name, positions in used.items():
        report.rules[name].sentences_used = len(positions)
    report.log()
    if not rows:
        logger.warning(f"No group passed the rules {rules}; the result is empty (see the report's 'skipped').")
        return datasets.Dataset.from_dict({key: [] for key in MENTION_FEATURES}, features=MENTION_FEATURES), report
    return datasets.Dataset.from_list(rows, features=MENTION_FEATURES), report


__all__ = [
    "CORPUS_FEATURES",
    "CORPUS_FORMATS",
    "KB_FEATURES",
    "MENTION_FEATURES",
    "RULES",
    "LinkReport",
    "MiningReport",
    "RuleReport",
    "detect_corpus_format",
    "load_entity_linked",
    "load_kb",
    "mine_positive_groups",
    "read_entity_linked_jsonl",
    "read_ernie",
]
