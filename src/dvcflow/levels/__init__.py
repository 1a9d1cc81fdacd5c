"""Service levels: deriving a procedure's level and 2022 class, and its lifecycle template.

One module per level (`level1` ... `level4`) builds the lifecycle from the shared parts in
``_parts``; a procedure's steps and permissions are data the templates take in.
"""

from dvcflow.levels._derivation import PRESENCE_TRIGGERS, Derivation, Level, OnlineClass, derive
from dvcflow.levels._templates import lifecycle_for

__all__ = ["PRESENCE_TRIGGERS", "Derivation", "Level", "OnlineClass", "derive", "lifecycle_for"]
