"""Pipelines of the package (mapped to `modeling_entity_typing.pipelines`)."""

from .entity_typing import EntityTypingInputError, EntityTypingPipeline


__all__ = ["EntityTypingInputError", "EntityTypingPipeline"]
