"""APScheduler 3 wakes the scheduler when an action falls due, and follows the ledger.

- On start the driver records everything already due (a catch-up after downtime), then
  keeps one job per pending future action in the ledger's own database (APScheduler's
  SQLAlchemy job store, table ``ledger_scheduler_jobs``). The job id is the action's
  ``command_id``: scheduling twice keeps one job; a moved window is a new id.
- A job that fires records what is due for its patient and re-plans that patient's jobs.
- Every ``poll_seconds`` the driver reads the entries recorded since it last looked (by any
  writer) and re-plans their patients: an end of treatment schedules the follow-up, a
  corrected one moves it, a death, withdrawal or loss to follow-up removes what was pending.

Jobs run one at a time in one worker thread. One foreground scheduler runs per database (a
second one is refused, rule SCHEDULER-RUNNING: they would share one job store); ``--once``
runs may overlap it, since each action's command id makes the ledger record it once.
"""

from __future__ import annotations

import contextlib
import logging
import time as timer
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import func, select

from ledger.application import TrialLedger
from ledger.persistence import EntryRow
from ledger.policies.schedule import Action
from ledger.scheduling.exclusive import SingleScheduler
from ledger.scheduling.service import RunReport, Scheduling

JOBS_TABLE = "ledger_scheduler_jobs"  # created by migrations/versions/0004
POLL_JOB = "ledger:poll"
log = logging.getLogger(__name__)

#: the driver whose jobs this process runs (APScheduler stores a job's function by name)
_running: SchedulerDriver | None = None


def fire(patient_id: str) -> None:
    """A job's function: record what is due for the patient, then plan their next job."""
    if _running is not None:
        _running.wake([patient_id])


def poll() -> None:
    """The polling job's function: re-plan the patients of entries recorded since last time."""
    if _running is not None:
        _running.poll()


class SchedulerDriver:
    def __init__(
        self,
        ledger: TrialLedger,
        poll_seconds: float = 60.0,
        on_run: Callable[[RunReport], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.scheduling = Scheduling(ledger)
        self.poll_seconds = poll_seconds
        self.on_run = on_run
        self.position = 0  # the last entry position seen
        self._lock = SingleScheduler(ledger)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=ledger.engine, tablename=JOBS_TABLE)},
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone=UTC,
        )

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Catch up, plan every patient's jobs, and run them in the background."""
        global _running
        self._lock.acquire()
        _running = self
        self.scheduler.start(paused=True)  # the stored jobs are loaded, none runs yet
        self.position = self._last_position()
        today = self.ledger.clock.today()
        self._record(self.scheduling.run_due(today=today))
        self.scheduler.add_job(poll, "interval", seconds=self.poll_seconds, id=POLL_JOB, replace_existing=True)
        self.plan(today=today)
        self.scheduler.resume()

    def run_forever(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Start and wait until told to stop (or interrupted), then shut down."""
        self.start()
        try:
            while not should_stop():
                timer.sleep(0.5)
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        global _running
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        if _running is self:
            _running = None
        self._lock.release()

    # --- what the jobs do -----------------------------------------------------------------

    def wake(self, patient_ids: list[str]) -> None:
        """Record what is due for these patients and plan the rest, both against one reading of the day."""
        today = self.ledger.clock.today()
        self._record(self.scheduling.run_due(patient_ids, today=today))
        self.plan(patient_ids, today=today)

    def poll(self) -> None:
        """Re-plan the patients whose entries were recorded since the last poll (any writer)."""
        with self.ledger.transaction(commit=False) as session:
            rows = session.execute(
                select(EntryRow.position, EntryRow.patient_id).where(EntryRow.position > self.position).order_by(EntryRow.position)
            ).all()
        if not rows:
            return
        patients = list(dict.fromkeys(r.patient_id for r in rows if r.patient_id is not None))
        if patients:
            self.wake(patients)
        self.position = rows[-1].position  # only once they are re-planned: a failure is tried again at the next poll

    def plan(self, patient_ids: Iterable[str] | None = None, today: date | None = None) -> int:
        """One job per pending action not yet due (overdue ones are recorded, not planned); the jobs planned.

        Jobs of these patients (of every patient without ``patient_ids``) that are no longer
        pending are removed: the window moved, or a death, withdrawal or loss cancelled it.
        """
        chosen = None if patient_ids is None else set(patient_ids)
        today = today or self.ledger.clock.today()
        wanted = {a.command_id: a for a in self.scheduling.pending(chosen) if a.due_on > today}
        for job in self.scheduler.get_jobs():
            if job.id != POLL_JOB and job.id not in wanted and (chosen is None or job.args[0] in chosen):
                self._remove(job.id)
        for command_id, action in wanted.items():
            self.scheduler.add_job(fire, "date", run_date=self.wall_time(action), id=command_id, args=[action.patient_id], replace_existing=True)
        return len(wanted)

    def wall_time(self, action: Action) -> datetime:
        """When, by this machine's clock, the ledger's clock reaches the action's due day."""
        due = datetime.combine(action.due_on, time.min, tzinfo=UTC)
        return due - (self.ledger.clock.now() - datetime.now(UTC))

    def _remove(self, job_id: str) -> None:
        with contextlib.suppress(JobLookupError):  # removed by another scheduler in between
            self.scheduler.remove_job(job_id)

    def _record(self, report: RunReport) -> None:
        if report.recorded:
            log.info("recorded %d due entries", len(report.recorded))
        if self.on_run is not None:
            self.on_run(report)

    def _last_position(self) -> int:
        with self.ledger.transaction(commit=False) as session:
            return int(session.execute(select(func.max(EntryRow.position))).scalar() or 0)
