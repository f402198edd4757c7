"""Configurations of the package's model families (mapped to `modeling_entity_typing.configuration`)."""

from .configuration_fivefine import DECISION_RULES, FiveFineConfig


__all__ = ["DECISION_RULES", "FiveFineConfig"]
