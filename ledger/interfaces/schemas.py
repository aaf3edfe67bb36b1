"""Marshmallow schemas for every command (CLI, import, later HTTP) and every output document.

``parse_command(data)`` turns one command object (``{"command": "start_cycle", ...}``) into
a typed command or raises ``InvalidCommand`` naming each bad field, before any rule runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from ledger.commands import COMMANDS, Command
from ledger.domain.values import (
    Attribution,
    Cytogenetic,
    Decision,
    DiseaseStatus,
    EndReason,
    Mrd,
    Phase,
    Response,
    VitalStatus,
)
from ledger.errors import InvalidCommand


class FullMatch(validate.Regexp):
    """A pattern the whole value must match, published in the OpenAPI document as ``ecma_pattern``.

    ``body`` is written in the syntax Python's ``re`` and ECMA-262 (the regular expressions of
    OpenAPI and JSON Schema) share, with no top-level ``|``: Python checks ``body\\Z`` from the
    start; clients are given ``^body$``, which accepts exactly the same values.
    """

    def __init__(self, body: str, error: str) -> None:
        super().__init__(body + r"\Z", error=error)
        self.ecma_pattern = f"^{body}$"


IDENTIFIER = FullMatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}", error="must be 1-64 letters, digits or _.:- (starting with a letter or digit)")
CODE = FullMatch(r"[A-Z][A-Z0-9_]{0,63}", error="must be an upper-case code such as PH_POS_ALL")
#: characters free text may hold: anything but the control characters other than tab and newline
_TEXT_CHARACTER = r"[^\x00-\x08\x0b-\x1f\x7f]"
#: a character of free text that is not blank (Python's whitespace, spelt out so that ECMA-262 agrees)
_TEXT_MARK = r"[^\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
TEXT_PATTERN = FullMatch(f"{_TEXT_CHARACTER}*{_TEXT_MARK}{_TEXT_CHARACTER}*", error="must be text with something in it and no control characters")
#: free text: something other than blanks, no control characters but tab and newline (a list, so the document shows both)
TEXT = [validate.Length(min=1, max=2000), TEXT_PATTERN]
MUTATION = FullMatch(r"[A-Za-z0-9][A-Za-z0-9_.:*>+-]{0,63}", error="must be a mutation name such as T315I or p.E255K")
KEY = FullMatch(r"[A-Za-z0-9][A-Za-z0-9_.:/#@-]{0,127}", error="must be 1-128 letters, digits or _.:/#@- (starting with a letter or digit)")
VERSION = FullMatch(r"[0-9]+(\.[0-9]+)*", error="must be a version such as 5.0")


class WholeNumber(fields.Integer):
    """An integer that refuses fractions (``2.5`` is an error, never silently ``2``).

    Accepts ``300``, ``300.0`` and the text ``"300"`` (the CLI passes text).
    """

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise self.make_error("invalid", input=value) from None
        return super()._validated(value)


def _enum(enum: Any, **kwargs: Any) -> fields.Enum[Any]:
    return fields.Enum(enum, by_value=True, **kwargs)


class CommandSchema(Schema):
    """Fields every command may carry."""

    class Meta:
        unknown = RAISE

    reason = fields.String(load_default=None, validate=TEXT)
    deviation = fields.Boolean(load_default=False)
    source = fields.String(load_default=None, validate=TEXT)
    command_id = fields.String(load_default=None, validate=KEY)

    @validates_schema
    def _deviation_needs_reason(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("deviation") and not data.get("reason"):
            raise ValidationError("a deviation must give a reason (rule DEVIATION)", "reason")


class PatientSchema(CommandSchema):
    patient_id = fields.String(required=True, validate=IDENTIFIER)


class EnrollPatientSchema(PatientSchema):
    enrolled_on = fields.Date(required=True)
    diagnosis = fields.String(required=True, validate=CODE)
    phase = _enum(Phase, required=True)
    cd22_percent = fields.Float(required=True, validate=validate.Range(0, 100))
    abl_mutations = fields.List(fields.String(validate=MUTATION), required=True)
    bsa_m2 = fields.Float(required=True, validate=validate.Range(0.1, 5.0))
    stratum = fields.String(load_default="default", validate=IDENTIFIER)
    birth_year = WholeNumber(load_default=None, validate=validate.Range(1900, 2100))
    sex = fields.String(load_default=None, validate=validate.OneOf(["F", "M", "U"]))
    site = fields.String(load_default=None, validate=IDENTIFIER)


#: a cycle number beyond the protocol's 6 is recordable as a deviation (CYCLE-CAP), but not without bound:
#: the read models keep it as a 32-bit integer
MAX_CYCLE = 99


class StartCycleSchema(PatientSchema):
    cycle = WholeNumber(required=True, validate=validate.Range(min=1, max=MAX_CYCLE))
    started_on = fields.Date(required=True)


class RecordBosutinibDoseSchema(PatientSchema):
    taken_on = fields.Date(required=True)
    dose_mg = WholeNumber(required=True, validate=validate.Range(min=1, max=2000))


class ModifyBosutinibDoseSchema(PatientSchema):
    effective_on = fields.Date(required=True)
    dose_mg = WholeNumber(required=True, validate=validate.Range(min=1, max=2000))
    reason = fields.String(required=True, validate=TEXT)


class RecordInoInfusionSchema(PatientSchema):
    given_on = fields.Date(required=True)
    dose_mg_m2 = fields.Float(required=True, validate=validate.Range(min=0, min_inclusive=False, max=10))
    started_at = fields.AwareDateTime(load_default=None)
    ended_at = fields.AwareDateTime(load_default=None)

    @validates_schema
    def _ends_after_start(self, data: dict[str, Any], **_: Any) -> None:
        start, end = data.get("started_at"), data.get("ended_at")
        if start and end and end < start:
            raise ValidationError("must not be before started_at", "ended_at")


class ReportToxicitySchema(PatientSchema):
    onset_on = fields.Date(required=True)
    term = fields.String(required=True, validate=[*TEXT, validate.Length(max=200)])
    grade = WholeNumber(required=True, validate=validate.Range(1, 5))
    attribution = _enum(Attribution, required=True)
    serious = fields.Boolean(load_default=False)
    hematologic = fields.Boolean(load_default=False)
    ctcae_version = fields.String(load_default="5.0", validate=[validate.Length(max=16), VERSION])  # the read model's column holds 16
    dlt = fields.Boolean(load_default=None, allow_none=True)


class ResolveToxicitySchema(PatientSchema):
    toxicity_id = fields.String(required=True, validate=IDENTIFIER)
    resolved_on = fields.Date(required=True)


class AssessResponseSchema(PatientSchema):
    assessed_on = fields.Date(required=True)
    response = _enum(Response, required=True)
    cytogenetic = _enum(Cytogenetic, load_default=None, allow_none=True)
    mrd = _enum(Mrd, load_default=None, allow_none=True)
    mrd_level = fields.Float(load_default=None, allow_none=True, validate=validate.Range(0, 1))


class EndTreatmentSchema(PatientSchema):
    ended_on = fields.Date(required=True)
    end_reason = _enum(EndReason, required=True)


class RecordFollowUpSchema(PatientSchema):
    contacted_on = fields.Date(required=True)
    vital_status = _enum(VitalStatus, required=True)
    disease_status = _enum(DiseaseStatus, load_default=None, allow_none=True)


class RecordLostToFollowUpSchema(PatientSchema):
    lost_on = fields.Date(required=True)


class RecordDeathSchema(PatientSchema):
    died_on = fields.Date(required=True)
    cause = fields.String(load_default=None, validate=TEXT)


class DecideEscalationSchema(CommandSchema):
    stratum = fields.String(required=True, validate=IDENTIFIER)
    decided_on = fields.Date(required=True)
    dose_mg = WholeNumber(required=True, validate=validate.Range(min=1, max=2000))
    decision = _enum(Decision, required=True)
    mtd_mg = WholeNumber(load_default=None, allow_none=True, validate=validate.Range(min=1, max=2000))

    @validates_schema
    def _mtd_with_conclusion(self, data: dict[str, Any], **_: Any) -> None:
        concluding = data.get("decision") in (Decision.MTD_DECLARED, Decision.MAX_DOSE_REACHED)
        if concluding and data.get("mtd_mg") is None:
            raise ValidationError(f"is required with {data['decision'].value}", "mtd_mg")
        if not concluding and data.get("mtd_mg") is not None:
            raise ValidationError("is given only with MTD_DECLARED or MAX_DOSE_REACHED", "mtd_mg")


class AmendmentSchema(PatientSchema):
    entry_id = fields.String(required=True, validate=IDENTIFIER)
    reason = fields.String(required=True, validate=TEXT, error_messages={"required": "a correction or void must give a reason (rule CORRECTION-REASON)"})


class CorrectEntrySchema(AmendmentSchema):
    changes = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), required=True, validate=validate.Length(min=1))


class VoidEntrySchema(AmendmentSchema):
    pass


SCHEMAS: dict[str, type[CommandSchema]] = {
    "enroll_patient": EnrollPatientSchema,
    "start_cycle": StartCycleSchema,
    "record_bosutinib_dose": RecordBosutinibDoseSchema,
    "modify_bosutinib_dose": ModifyBosutinibDoseSchema,
    "record_ino_infusion": RecordInoInfusionSchema,
    "report_toxicity": ReportToxicitySchema,
    "resolve_toxicity": ResolveToxicitySchema,
    "assess_response": AssessResponseSchema,
    "end_treatment": EndTreatmentSchema,
    "record_follow_up": RecordFollowUpSchema,
    "record_lost_to_follow_up": RecordLostToFollowUpSchema,
    "record_death": RecordDeathSchema,
    "decide_escalation": DecideEscalationSchema,
    "correct_entry": CorrectEntrySchema,
    "void_entry": VoidEntrySchema,
}
_INSTANCES: dict[str, CommandSchema] = {name: cls() for name, cls in SCHEMAS.items()}
COMMON_FIELDS = set(CommandSchema._declared_fields) | {"patient_id"}


def parse_command(data: Any) -> Command:
    """A typed command from one command object, or ``InvalidCommand`` naming the fields."""
    if not isinstance(data, Mapping):
        raise InvalidCommand({"command": "a command must be a JSON object"})
    name = data.get("command")
    if not isinstance(name, str) or name not in SCHEMAS:
        known = ", ".join(sorted(SCHEMAS))
        raise InvalidCommand({"command": f"unknown or missing command {name!r}; one of {known}"})
    fields_ = {k: v for k, v in data.items() if k != "command"}
    unknown = sorted(set(fields_) - set(_INSTANCES[name].fields))
    if unknown:  # named here: a field called ``_schema`` would be taken for marshmallow's own key
        raise InvalidCommand({unknown[0]: f"unknown field of {name}"})
    return COMMANDS[name](**_load(_INSTANCES[name], fields_))


def parse_changes(command_name: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Typed corrected values for fields of ``command_name``; errors name ``changes.<field>``."""
    schema = _INSTANCES[command_name]
    not_correctable = sorted(set(changes) & COMMON_FIELDS)
    unknown = sorted(set(changes) - set(schema.fields))
    if not_correctable or unknown:
        name = (not_correctable or unknown)[0]
        what = "cannot be corrected" if not_correctable else f"is not a field of {command_name}"
        raise InvalidCommand({f"changes.{name}": what})
    try:
        loaded = schema.load(changes, partial=True, unknown=EXCLUDE)
    except ValidationError as error:
        raise InvalidCommand({f"changes.{k}": v for k, v in _flatten(error.messages).items()}) from None
    return {k: loaded[k] for k in changes}


def _load(schema: Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return dict(schema.load(data))
    except ValidationError as error:
        raise InvalidCommand(_flatten(error.messages)) from None


def _flatten(messages: Any, prefix: str = "") -> dict[str, str]:
    """``{"a": {"0": ["bad"]}}`` → ``{"a.0": "bad"}``; ``_schema`` errors become ``command``."""
    flat: dict[str, str] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = "command" if key == "_schema" and not prefix else f"{prefix}{key}"
            flat.update(_flatten(value, f"{name}.") if isinstance(value, dict) else {name: _join(value)})
    else:
        flat[prefix.rstrip(".") or "command"] = _join(messages)
    return flat


def _join(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)
