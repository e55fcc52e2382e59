"""Time and id conventions shared by orchestrations and entities: epoch microseconds (UTC) and the
namespace of the uuids dtctl derives deterministically. Pure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

__all__ = ["EPOCH", "UUID_NAMESPACE", "Time", "from_epoch_us", "to_epoch_us", "to_micros"]

EPOCH = datetime(1970, 1, 1)
Time = datetime | int  # a datetime, or epoch microseconds UTC
_ONE_US = timedelta(microseconds=1)
# uuid5(NAMESPACE_OID, "9e952958-5e33-4daf-827f-2fa12937b875"), spelled out: computing it at import
# would load hashlib (OpenSSL, ~3.5 MB of a worker's memory) before any orchestration needs a uuid.
UUID_NAMESPACE = uuid.UUID("5bf3dc27-d91d-5ea7-9c3e-9f1f2ae7c309")


def to_epoch_us(moment: datetime) -> int:
    """A datetime as epoch microseconds; naive values are taken as UTC, aware ones converted."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (moment - EPOCH) // _ONE_US


def from_epoch_us(value: int) -> datetime:
    """Naive UTC, as the durabletask SDK hands out ``current_utc_datetime``."""
    return EPOCH + timedelta(microseconds=value)


def to_micros(value: Time | None) -> int | None:
    """A client's time argument as epoch microseconds UTC (naive datetimes taken as UTC)."""
    return value if value is None or isinstance(value, int) else to_epoch_us(value)
