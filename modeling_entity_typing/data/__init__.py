"""Data for training and evaluation: every file format read into one mention record (`mention_data`), k-shot
sampling (`sampling`) and MLM corruption (`masking`)."""

from .masking import corrupt_for_mlm
from .mention_data import MentionDataError, load_mentions
from .sampling import sample_k_shot


__all__ = ["MentionDataError", "corrupt_for_mlm", "load_mentions", "sample_k_shot"]
