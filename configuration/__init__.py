"""Configurations of the package's model families (mapped to `modeling_entity_typing.configuration`)."""

from .configuration_crossc import CONTRASTIVE_DENOMINATORS, CrossCConfig
from .configuration_fivefine import DECISION_RULES, FiveFineConfig


__all__ = ["CONTRASTIVE_DENOMINATORS", "DECISION_RULES", "CrossCConfig", "FiveFineConfig"]
