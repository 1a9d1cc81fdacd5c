"""Service levels: deriving a procedure's level and 2022 class from its capabilities."""

from dvcflow.levels._derivation import PRESENCE_TRIGGERS, Derivation, Level, OnlineClass, derive

__all__ = ["PRESENCE_TRIGGERS", "Derivation", "Level", "OnlineClass", "derive"]
