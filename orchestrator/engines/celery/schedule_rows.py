"""The django-celery-beat schedule rows a batch of jobs needs, shared and created in bulk.

django-celery-beat's crontab, interval and clocked tables have no unique constraints to upsert
on, and many tasks share one row (every job at ``0 * * * *`` in UTC). ``ScheduleRows`` finds the
rows a batch needs in one query per table, creates the missing ones with one ``bulk_create``
each, and hands each job its row: what the Celery backend writes into ``PeriodicTask``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule

from orchestrator.engines.base import Desired


class ScheduleRows:
    """The schedule rows a batch of jobs needs: existing ones reused, missing ones created in
    bulk (django-celery-beat's schedule tables have no unique constraints to upsert on)."""

    def __init__(self, jobs: Iterable[Desired]) -> None:
        crons, intervals, clocks = set(), set(), set()
        for desired in jobs:
            s = desired.schedule
            if s.kind == "cron":
                crons.add((*str(s.cron).split(" "), s.timezone))
            elif s.kind == "interval":
                intervals.add(int(s.seconds or 0))
            elif s.kind == "clocked" and s.when is not None:
                clocks.add(s.when)
        self.crontabs = self._crontabs(crons)
        self.intervals = self._intervals(intervals)
        self.clocks = self._clocks(clocks)

    @staticmethod
    def _crontabs(keys: set[tuple[str, ...]]) -> dict[tuple[str, ...], CrontabSchedule]:
        if not keys:
            return {}
        found: dict[tuple[str, ...], CrontabSchedule] = {}
        zones = {key[5] for key in keys}
        for row in CrontabSchedule.objects.filter(timezone__in=zones).order_by("-pk"):
            key = (row.minute, row.hour, row.day_of_month, row.month_of_year, row.day_of_week)
            found[(*key, str(row.timezone))] = row
        missing = [
            CrontabSchedule(
                minute=k[0],
                hour=k[1],
                day_of_month=k[2],
                month_of_year=k[3],
                day_of_week=k[4],
                timezone=k[5],
            )
            for k in keys - found.keys()
        ]
        for row in CrontabSchedule.objects.bulk_create(missing):
            key = (row.minute, row.hour, row.day_of_month, row.month_of_year, row.day_of_week)
            found[(*key, str(row.timezone))] = row
        return found

    @staticmethod
    def _intervals(seconds: set[int]) -> dict[int, IntervalSchedule]:
        if not seconds:
            return {}
        period = IntervalSchedule.SECONDS
        found = {
            row.every: row
            for row in IntervalSchedule.objects.filter(period=period, every__in=seconds)
        }
        missing = [IntervalSchedule(every=s, period=period) for s in seconds - found.keys()]
        for row in IntervalSchedule.objects.bulk_create(missing):
            found[row.every] = row
        return found

    @staticmethod
    def _clocks(instants: set[datetime]) -> dict[datetime, ClockedSchedule]:
        if not instants:
            return {}
        found = {
            row.clocked_time: row
            for row in ClockedSchedule.objects.filter(clocked_time__in=instants)
        }
        missing = [ClockedSchedule(clocked_time=when) for when in instants - found.keys()]
        for row in ClockedSchedule.objects.bulk_create(missing):
            found[row.clocked_time] = row
        return found

    def for_(
        self, desired: Desired
    ) -> tuple[CrontabSchedule | None, IntervalSchedule | None, ClockedSchedule | None]:
        s = desired.schedule
        if s.kind == "cron":
            return self.crontabs[(*str(s.cron).split(" "), s.timezone)], None, None
        if s.kind == "interval":
            return None, self.intervals[int(s.seconds or 0)], None
        if s.when is None:
            raise ValueError(f"a one-time schedule needs an instant: {s.describe()}")
        return None, None, self.clocks[s.when]
