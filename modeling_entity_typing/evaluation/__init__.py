"""Scores of predicted against gold labels (`scoring`), also as an offline `evaluate` module (`metrics/`)."""

from .scoring import load_typing_metric, typing_scores


__all__ = ["load_typing_metric", "typing_scores"]
