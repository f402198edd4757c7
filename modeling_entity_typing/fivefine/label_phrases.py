"""Label -> phrase tables: FiveFine's default rule, its per-dataset overrides, and user mapping files.

FiveFine reads each label as words (`/organization/sports_team` -> "sports team"). Where the last path segment is a
poor word, the reference code (hldai/fivefine `utils/utils.py`) names the type with several synonyms, pooled by the
type encoder: `/person/legal` -> "legal person lawyer judge". These tables are those overrides.
"""

from collections.abc import Iterable
from os import PathLike
from pathlib import Path

from ..data.mention_data import MentionDataError, _lines
from ..label_sets import default_label_phrase


ONTONOTES_PHRASES = {
    "/person/legal": "legal person lawyer judge",
    "/location/structure/government": "government location",
    # In the reference for the full 89-type OntoNotes schema, not in the few-shot vocabulary:
    "/person/artist/music": "musician",
    "/organization/military": "military organization army",
    "/organization/transit": "transit organization",
    "/organization/company/broadcast": "broadcast company television network",
    "/organization/music": "music organization",
}
BBN_PHRASES = {
    "/ORGANIZATION/CORPORATION": "company",
    "/GPE": "geo political",
    "/FAC": "facility",
}
FEW_NERD_PHRASES = {
    "/art/writtenart": "written work book newspaper",
    "/organization/sportsteam": "sports team",
    "/organization/sportsleague": "sports league",
    "/organization/government_governmentagency": "government agency",
    "/other/biologything": "biology",
    "/location/GPE": "location city town state country",
    "/art/broadcastprogram": "broadcast program",
    "/building/sportsfacility": "sports facility",
    "/other/chemicalthing": "chemical",
    "/organization/education": "education school university",
    "/organization/media_newspaper": "newspaper company",
    "/location/bodiesofwater": "lake river sea",
    "/other/astronomything": "astronomy",
    "/event/sportsevent": "sports game match",
    "/organization/showorganization": "band",
    "/other/educationaldegree": "educational degree",
    "/organization/politicalparty": "political party",
    "/event/attack_battle_war_militaryconflict": "attack battle war military conflict",
    "/other/livingthing": "living thing",
}
PHRASE_TABLES = {"ontonotes": ONTONOTES_PHRASES, "bbn": BBN_PHRASES, "few_nerd": FEW_NERD_PHRASES}


def dataset_default_phrase(label: str, dataset: str | None = None) -> str:
    """The default rule, with the reference's per-dataset variants: BBN lower-cases (`/WORK_OF_ART` -> "work of
    art"); Few-NERD names `.../other` by its coarse type (`/person/other` -> "person")."""
    segments = [segment for segment in label.split("/") if segment]
    if dataset == "few_nerd" and len(segments) > 1 and segments[-1] == "other":
        return default_label_phrase(segments[0])
    phrase = default_label_phrase(label)
    return phrase.lower() if dataset == "bbn" else phrase


def label_phrases_for(
    labels: Iterable[str], dataset: str | None = None, overrides: dict[str, str] | None = None
) -> dict[str, str]:
    """`{label: phrase}` for a label set: user `overrides` first, then the dataset's table, then the default rule.

    `dataset` is one of `"ontonotes"`, `"bbn"`, `"few_nerd"` (FiveFine's tables) or `None` (default rule only).
    """
    if dataset is not None and dataset not in PHRASE_TABLES:
        raise ValueError(f"No phrase table for dataset {dataset!r}; choose one of {sorted(PHRASE_TABLES)} or None.")
    table = {**PHRASE_TABLES.get(dataset, {}), **(overrides or {})}
    return {label: table.get(label) or dataset_default_phrase(label, dataset) for label in labels}


def read_label_phrases(path: str | PathLike) -> dict[str, str]:
    """A user mapping file: one `label<TAB>phrase` per line (`#` comments and blank lines ignored).

    Read like the data files: UTF-8 (a spreadsheet's byte-order mark is skipped, so the first label still matches),
    plain or `.gz`; undecodable bytes raise `MentionDataError` with the line."""
    path = Path(path)
    phrases: dict[str, str] = {}
    for line_number, line in _lines(path):
        line = line.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise MentionDataError(
                f"{path}:{line_number}: expected 'label<TAB>phrase', got {line!r:.80} (a phrase may hold "
                "several words separated by spaces)."
            )
        label = fields[0].strip()
        if label in phrases:
            raise MentionDataError(f"{path}:{line_number}: label {label!r} is mapped twice.")
        phrases[label] = fields[1].strip()
    if not phrases:
        raise MentionDataError(f"{path}: no 'label<TAB>phrase' lines found.")
    return phrases


__all__ = [
    "BBN_PHRASES",
    "FEW_NERD_PHRASES",
    "ONTONOTES_PHRASES",
    "dataset_default_phrase",
    "label_phrases_for",
    "read_label_phrases",
]
