"""Wall-clock times a time zone skips or repeats when it changes its clocks.

Celery's crontab and croniter disagree inside those windows (Celery runs a skipped time late by
the size of the change and a repeated time once; croniter runs at the end of the gap and twice),
so a schedule that fires inside one gets a note saying so. zoneinfo has no public list of
transitions, so this finds them: days whose offset changes are found by stepping a day at a
time, and each change is then located to the minute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=256)
def clock_changes(timezone: str, years: int = 3) -> frozenset[tuple[int, int]]:
    """Local (hour, minute) wall times skipped or repeated by ``timezone`` in the next years."""
    tz = ZoneInfo(timezone)
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    times: set[tuple[int, int]] = set()
    day = timedelta(days=1)
    for index in range(years * 366):
        low, high = start + day * index, start + day * (index + 1)
        before, after = low.astimezone(tz).utcoffset(), high.astimezone(tz).utcoffset()
        if before is None or after is None or before == after:
            continue
        while high - low > timedelta(minutes=1):  # the first minute with the new offset
            middle = low + (high - low) / 2
            if middle.astimezone(tz).utcoffset() == before:
                low = middle
            else:
                high = middle
        change = high.replace(second=0, microsecond=0)
        size = abs(int((after - before).total_seconds()) // 60)
        # Skipped times start at the old wall clock; repeated ones at the new one.
        wall = (change + before) if after > before else (change + after)
        for step in range(size):
            moment = wall + timedelta(minutes=step)
            times.add((moment.hour, moment.minute))
    return frozenset(times)
