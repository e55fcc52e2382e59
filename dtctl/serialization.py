"""Drop-in for ``from durabletask import serialization``: the SDK's data converter names, dtctl's codec.

A converter written against the durabletask SDK (``serialize`` / ``deserialize`` / ``coerce`` /
``can_reconstruct``) works with dtctl after replacing ``durabletask.serialization`` with
``dtctl.serialization``; pass it as ``dtctl.App(data_converter=...)`` and
``TaskHubClient(..., data_converter=...)``.
"""

from __future__ import annotations

from dtctl.core.payload import DataConverter, JsonDataConverter

__all__ = ["DEFAULT_DATA_CONVERTER", "DataConverter", "JsonDataConverter"]

DEFAULT_DATA_CONVERTER: DataConverter = JsonDataConverter()
