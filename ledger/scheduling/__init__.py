"""Time-driven policies: what a closed window makes due, recorded by the scheduler.

``Scheduling`` computes the pending actions from the recorded courses and records those due
(``run_due``); ``SchedulerDriver`` wakes a process with APScheduler 3 when the next one falls
due and follows the ledger for new facts that add, move or cancel actions.
"""

from ledger.scheduling.service import SYSTEM_ACTOR, RunReport, Scheduling

__all__ = ["SYSTEM_ACTOR", "RunReport", "Scheduling"]
