"""`evaluate` module for entity typing: strict accuracy, loose macro and loose micro P/R/F1.

Load it offline from the installed package: `modeling_entity_typing.load_typing_metric()`, or
`evaluate.load(<this directory>)`. The arithmetic lives in `modeling_entity_typing.evaluation.scoring`.
"""

import datasets
import evaluate

from modeling_entity_typing.evaluation.scoring import typing_scores


_DESCRIPTION = """Entity-typing metrics over label sets per mention (Ling & Weld 2012; Choi et al. 2018; Dai & Zeng
2023): strict accuracy (exact set match), loose macro P/R/F1 (P averaged over mentions with predictions, R over
mentions with gold labels) and loose micro P/R/F1. With `hierarchical=True`, predicted and gold sets are first
closed under `/`-path ancestors (`/person/artist` adds `/person`), as FET benchmarks do."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[str]]`): predicted labels of each mention.
    references (`list[list[str]]`): gold labels of each mention.
    hierarchical (`bool`, defaults to `False`): expand both sides with `/`-path ancestors first.
Returns:
    `strict_accuracy`, `macro_precision`, `macro_recall`, `macro_f1`, `micro_precision`, `micro_recall`, `micro_f1`
    (all in [0, 1]) and `num_mentions`.
Example:
    >>> metric = modeling_entity_typing.load_typing_metric()
    >>> metric.compute(predictions=[["/person/artist"]], references=[["/person"]], hierarchical=True)["macro_f1"]
    0.666...
"""

_CITATION = """@inproceedings{dai-zeng-2023-ultra,
  title = {From Ultra-Fine to Fine: Fine-tuning Ultra-Fine Entity Typing Models to Fine-grained},
  author = {Dai, Hongliang and Zeng, Ziqian},
  booktitle = {Proceedings of ACL 2023},
  year = {2023}
}"""


class EntityTyping(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references, hierarchical: bool = False):
        return typing_scores(predictions, references, hierarchical=hierarchical)
