"""Seeded k-shot sampling per type, the few-shot protocol of FiveFine and ALIGNIE (5 examples per type)."""

import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..decision import label_ancestors


logger = logging.getLogger(__name__)


def finest_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """The labels that are no other label's ancestor: `[/person, /person/artist]` -> `(/person/artist,)`."""
    ancestors = {ancestor for label in labels for ancestor in label_ancestors(label)}
    return tuple(sorted(set(labels) - ancestors))


@dataclass
class KShotSample:
    """Row indices of a k-shot sample (in input order) and the types that had fewer than k examples."""

    indices: list[int]
    examples_per_type: dict[str, int]
    short_types: dict[str, int] = field(default_factory=dict)
    unlabelled: int = 0


def sample_k_shot(labels_per_record: Sequence[Sequence[str]], k: int, seed: int) -> KShotSample:
    """Choose `k` records per type, reproducibly.

    A record's type is its finest label (for a multi-path record, the sorted finest labels joined by `|`), so a
    `/person/artist` mention counts for `/person/artist` only and a bare `/person` mention for `/person`. Each
    type draws from its own generator seeded by `(seed, type)`: the sample of one type does not change when other
    types are added or removed. A type with fewer than `k` records contributes all of them; such types are logged
    and listed in `short_types`. Records without labels are never chosen and are counted in `unlabelled`.
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"`k` must be a positive integer, got {k!r}.")
    rows_by_type: dict[str, list[int]] = defaultdict(list)
    unlabelled = 0
    for row, labels in enumerate(labels_per_record):
        if not labels:
            unlabelled += 1
            continue
        rows_by_type["|".join(finest_labels(labels))].append(row)
    chosen, per_type, short = [], {}, {}
    for type_key in sorted(rows_by_type):
        rows = rows_by_type[type_key]
        picked = rows if len(rows) <= k else random.Random(f"{seed}\x00{type_key}").sample(rows, k)
        chosen.extend(picked)
        per_type[type_key] = len(picked)
        if len(rows) < k:
            short[type_key] = len(rows)
    if short:
        logger.warning(
            f"{len(short)} types have fewer than {k} examples and contribute all they have: "
            + ", ".join(f"{type_key} ({count})" for type_key, count in sorted(short.items()))
        )
    if unlabelled:
        logger.warning(f"{unlabelled} records without labels were not sampled.")
    return KShotSample(sorted(chosen), per_type, short, unlabelled)


__all__ = ["KShotSample", "finest_labels", "sample_k_shot"]
