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


_SCALARS = (str, int, float, bool, type(None))


def dumps(value: Any) -> str:
    """``json.dumps(plain(value), sort_keys=True)``, the common flat dictionary made plain in one pass."""
    if isinstance(value, dict):
        flat = {}
        for key, item in value.items():
            if isinstance(item, _SCALARS):
                flat[key] = item
            elif isinstance(item, (datetime, date)):
                flat[key] = item.isoformat()
            elif isinstance(item, Enum):
                flat[key] = item.value
            else:  # nested: let the encoder walk it
                return json.dumps(value, sort_keys=True, default=_json_default)
        return json.dumps(flat, sort_keys=True)
    return json.dumps(value, sort_keys=True, default=_json_default)
