"""Pipelines of the package (mapped to `modeling_entity_typing.pipelines`)."""

from .entity_typing import EntityTypingPipeline


__all__ = ["EntityTypingPipeline"]
