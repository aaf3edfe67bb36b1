"""The trial objectives report (protocol O1–O8), its figures and the SDTM-shaped exports.

``data`` gathers per-patient analysis records from the bitemporal folds; ``objectives``
answers O1–O8 with the entry ids behind every figure; ``estimators`` wraps SciPy and
lifelines; ``figures``, ``html`` and ``text`` present the report; ``sdtm`` writes the
datasets. Definitions and decisions: docs/report.md.
"""
