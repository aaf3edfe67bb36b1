"""The JSON form of recorded values: dates and times as ISO 8601, vocabularies as their value."""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import Enum
from typing import Any


def plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not a recorded value")


# json.dumps(..., sort_keys=True) builds its encoder on every call: built once here; the encoder
# asks ``_json_default`` only about the values JSON has no form for
_SORTED = json.JSONEncoder(sort_keys=True, default=_json_default)


def dumps(value: Any) -> str:
    """``json.dumps(plain(value), sort_keys=True)`` in one pass."""
    return _SORTED.encode(value)
