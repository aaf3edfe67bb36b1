"""What the OpenAPI document (``/openapi.json``) says beyond what apispec derives from the schemas.

The document promises what the server accepts, so a client or a fuzzer that checks it checks
what the server checks. apispec misses three things, published here:

- OpenAPI takes its ``pattern`` keywords from JSON Schema, whose regular expressions are
  ECMA-262. The validators are Python's (``body\\Z``, where ``\\Z`` means a literal ``Z`` to
  ECMA-262), so each ``FullMatch`` is published as the ``^body$`` that accepts the same values.
- A ``Range`` that excludes its bound (``dose_mg_m2`` above 0) has ``exclusiveMinimum``.
- A ``Length`` on an object (``changes``: at least one field) counts its properties.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from ledger.interfaces.schemas import IDENTIFIER, FullMatch

#: the ``patient_id`` of ``/patients/{patient_id}``: a study subject id, as ``enroll_patient`` takes it
PATIENT_ID = {
    "in": "path",
    "name": "patient_id",
    "description": "the study subject id given at enrollment",
    "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": IDENTIFIER.ecma_pattern},
    "example": "S001",
}


def publish_patterns(api: Any) -> None:
    """Make ``api`` (flask-smorest's ``Api``) publish ECMA-262 patterns; before any blueprint is registered."""
    converter = api.ma_plugin.converter
    for publish in (_ecma_pattern, _exclusive_bounds, _object_size):
        converter.add_attribute_function(publish)


def _ecma_pattern(converter: Any, field: fields.Field[Any], **kwargs: Any) -> dict[str, Any]:
    """Runs after apispec's own ``field2pattern``, so its ``pattern`` replaces the Python one."""
    patterns = [v.ecma_pattern for v in field.validators if isinstance(v, FullMatch)]
    return {"pattern": patterns[0]} if patterns else {}


def _exclusive_bounds(converter: Any, field: fields.Field[Any], **kwargs: Any) -> dict[str, Any]:
    """OpenAPI 3.0's boolean ``exclusiveMinimum``/``exclusiveMaximum`` beside apispec's ``minimum``/``maximum``."""
    bounds: dict[str, Any] = {}
    for v in field.validators:
        if isinstance(v, validate.Range):
            if v.min is not None and not v.min_inclusive:
                bounds["exclusiveMinimum"] = True
            if v.max is not None and not v.max_inclusive:
                bounds["exclusiveMaximum"] = True
    return bounds


def _object_size(converter: Any, field: fields.Field[Any], ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """apispec writes a ``Length`` on a ``Dict`` as ``minLength``, which JSON Schema applies to strings only."""
    if not isinstance(field, fields.Dict):
        return {}
    return {f"{end}Properties": ret.pop(f"{end}Length") for end in ("min", "max") if f"{end}Length" in ret}
