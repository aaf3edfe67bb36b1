"""Audit rows as a CDISC ODM 1.3.2 file: ``FileType="Transactional"``, ``Archival="Yes"``.

Every entry of the ledger is one transaction, in recorded order (docs/audit-export.md has the
whole mapping and why):

- a patient is a ``SubjectData`` (``SubjectKey`` = the study subject id); the entries of a
  stratum's escalation that concern no patient (its opening, 3+3 decisions, their signatures)
  go to the subject ``STRATUM:<stratum>``;
- an entry is a ``FormData`` ``F.<EventType>`` whose ``FormRepeatKey`` is its entry id, in the
  study event ``SE.COURSE`` (patients) or ``SE.ESCALATION`` (strata); inside it ``IG.ENTRY``
  holds the envelope (valid date, protocol version, command id) and ``IG.<EventType>`` the
  event's own fields, one ``ItemData`` ``IT.<EventType>.<field>`` each, each with the
  ``AuditRecord`` of the entry: user (one ODM ``User`` per user and role), location (the
  patient's site, else ``LOC.LEDGER``), recorded time, reason and source;
- a correction updates the corrected items of the entry it amends (``TransactionType="Update"``),
  its own user, time and reason in their audit records, and the value before it in an
  ``Annotation`` (ODM keeps no old value beside an item); a void removes the amended entry's
  form (``TransactionType="Remove"``) with the void's audit record;
- a ``RecordSigned`` entry carries a ``Signature`` on its ``SubjectData``
  (21 CFR 11.50: who, when and the meaning, through its ``SignatureDef``).

Modules:

- ``writer``: ``write_odm(rows, out, context)``, the transactions;
- ``definitions``: the ``Study`` metadata and ``AdminData`` the transactions reference;
- ``elements``: XML elements whose text XML 1.0 can carry.
"""

from __future__ import annotations

from ledger.audit.odm.writer import OdmContext, write_odm

__all__ = ["OdmContext", "write_odm"]
