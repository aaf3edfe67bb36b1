"""What the OpenAPI document (``/openapi.json``) says beyond what apispec derives from the schemas.

OpenAPI takes its ``pattern`` keywords from JSON Schema, whose regular expressions are ECMA-262.
The validators are Python's (``body\\Z``, where ``\\Z`` means a literal ``Z`` to ECMA-262), so
each ``FullMatch`` is published as the ``^body$`` that accepts the same values; a client or a
fuzzer that checks the document's patterns then checks what the server checks.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields

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
    api.ma_plugin.converter.add_attribute_function(_ecma_pattern)


def _ecma_pattern(converter: Any, field: fields.Field[Any], **kwargs: Any) -> dict[str, Any]:
    """Runs after apispec's own ``field2pattern``, so its ``pattern`` replaces the Python one."""
    patterns = [v.ecma_pattern for v in field.validators if isinstance(v, FullMatch)]
    return {"pattern": patterns[0]} if patterns else {}
