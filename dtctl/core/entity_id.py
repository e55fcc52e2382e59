"""Entity instance ids: ``EntityInstanceId(entity, key)``, written ``@entity@key``.

An entity is addressed by the name of its entity function (case-insensitive, stored lower-cased) and a
key. The string form is the entity's instance id in the task hub (it starts with ``@``, which instance
ids of orchestrations may not), and ids order by it: that order is the global lock order that keeps two
critical sections from deadlocking. Pure.
"""

from __future__ import annotations

from functools import total_ordering

__all__ = ["EntityInstanceId"]

_SEPARATOR = "@"


@total_ordering
class EntityInstanceId:
    """The id of one entity: its entity name (lower-cased) and its key."""

    __slots__ = ("_entity", "_key", "_text")

    def __init__(self, entity: str, key: str) -> None:
        EntityInstanceId.validate_entity_name(entity)
        EntityInstanceId.validate_key(key)
        self._entity = entity.lower()
        self._key = key
        self._text = f"{_SEPARATOR}{self._entity}{_SEPARATOR}{key}"

    @property
    def entity(self) -> str:
        return self._entity

    @property
    def key(self) -> str:
        return self._key

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"EntityInstanceId({self._entity!r}, {self._key!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EntityInstanceId):
            return NotImplemented
        return self._text == other._text

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, EntityInstanceId):
            return NotImplemented
        return self._text < other._text

    def __hash__(self) -> int:
        return hash(self._text)

    @staticmethod
    def parse(entity_id: str) -> EntityInstanceId:
        """The id written as ``@entity@key``; anything else raises ``ValueError``."""
        if not isinstance(entity_id, str) or not entity_id.startswith(_SEPARATOR):
            raise ValueError(f"an entity id must start with '@' (as in @counter@key), not {entity_id!r}")
        parts = entity_id.split(_SEPARATOR, 2)
        if len(parts) != 3:
            raise ValueError(f"an entity id is written @entity@key, not {entity_id!r}")
        return EntityInstanceId(parts[1], parts[2])

    @staticmethod
    def of(value: EntityInstanceId | str) -> EntityInstanceId:
        """An id, or its string form parsed."""
        return value if isinstance(value, EntityInstanceId) else EntityInstanceId.parse(value)

    @staticmethod
    def validate_entity_name(name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("an entity name must not be empty")
        if _SEPARATOR in name:
            raise ValueError(f"an entity name must not contain '@': {name!r}")

    @staticmethod
    def validate_key(key: str) -> None:
        if not isinstance(key, str) or not key:
            raise ValueError("an entity key must not be empty")
        if _SEPARATOR in key:
            raise ValueError(f"an entity key must not contain '@': {key!r}")
