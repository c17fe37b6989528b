"""Pydantic models shared by the curate and train stages: the only contract between them."""
from schemas.record import Message, Record, RecordMeta, Kind, Role
from schemas.recipe import Recipe, RecipeError, load_recipe
from schemas.manifest import Manifest, Reject, SCHEMA_VERSION

__all__ = [
    "Message", "Record", "RecordMeta", "Kind", "Role",
    "Recipe", "RecipeError", "load_recipe",
    "Manifest", "Reject", "SCHEMA_VERSION",
]
