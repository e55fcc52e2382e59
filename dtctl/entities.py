"""Drop-in for ``from durabletask import entities``: the same names, backed by dtctl.

Entity functions and ``DurableEntity`` classes written against the durabletask SDK run unchanged after
replacing ``from durabletask import entities`` with ``from dtctl import entities``; register them with
``app.add_entity(fn)`` or ``@app.entity``.
"""

from __future__ import annotations

from dtctl.core.critical_section import EntityLock, EntityOperationFailedException
from dtctl.core.entity import DurableEntity, EntityContext, EntityDefinition
from dtctl.core.entity_id import EntityInstanceId

__all__ = [
    "DurableEntity",
    "EntityContext",
    "EntityDefinition",
    "EntityInstanceId",
    "EntityLock",
    "EntityOperationFailedException",
]

PACKAGE_NAME = "dtctl.entities"
