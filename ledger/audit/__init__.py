"""Audit exports: the audit trail as CSV, JSON or CDISC ODM 1.3.2 (docs/audit-export.md).

- ``selection``: ``AuditFilter`` and the reads of the audit-trail read model behind it;
- ``export``: ``export(...) -> ExportResult``, the CSV and JSON writers;
- ``odm``: the ODM 1.3.2 writer (Transactional, Archival), from rows alone.
"""

from __future__ import annotations

from ledger.audit.export import FORMATS, ExportResult, export
from ledger.audit.selection import AuditFilter

__all__ = ["FORMATS", "AuditFilter", "ExportResult", "export"]
