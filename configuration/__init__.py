"""Configurations of the package's model families (mapped to `modeling_entity_typing.configuration`)."""

from .configuration_crossc import CONTRASTIVE_DENOMINATORS, CrossCConfig
from .configuration_entity_typing import DECISION_RULES, EntityTypingConfigMixin
from .configuration_fivefine import FiveFineConfig


__all__ = ["CONTRASTIVE_DENOMINATORS", "DECISION_RULES", "CrossCConfig", "EntityTypingConfigMixin", "FiveFineConfig"]
