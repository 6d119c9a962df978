-- The due-time index of django-celery-beat's periodic tasks (celery_engine_beatdue), kept in the
-- same transaction as every change, whoever makes it: the admin, an ORM save(), bulk_create() or
-- QuerySet.update() (which send no signals), the reconciler's bulk writes, a hand-written SQL edit.
--
-- Computing a crontab's next instant in SQL would mean re-implementing Celery's crontab (time zones,
-- daylight saving, day-of-month/day-of-week rules) and drifting from it. So the triggers only
-- record THAT a task changed: its row becomes dirty, due_at is cleared (a dirty row is never sent
-- from a stale due_at) and change_seq takes a fresh value from a sequence, which is monotonic where
-- timestamps are not (two edits in one second stay two changes). The NOTIFY, delivered at commit,
-- wakes the beat leader, which computes due_at with Celery's own schedule classes and writes it
-- back only if change_seq is still the one it read (orchestrator/engines/celery/due_scheduler.py).
-- Statement-level triggers with transition tables: a bulk write of 100,000 rows is one upsert and
-- one notification, not 100,000.

CREATE SEQUENCE IF NOT EXISTS orchestrator_beat_change_seq;
ALTER TABLE celery_engine_beatdue
    ALTER COLUMN change_seq SET DEFAULT nextval('orchestrator_beat_change_seq');

-- Mark the given periodic tasks changed; one notification per transaction (payloads dedupe).
CREATE OR REPLACE FUNCTION orchestrator_beat_mark_dirty(task_ids integer[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $function$
BEGIN
    IF cardinality(task_ids) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO celery_engine_beatdue AS d (task_id, due_at, dirty, change_seq, error)
    SELECT id, NULL, true, nextval('orchestrator_beat_change_seq'), ''
    FROM unnest(task_ids) AS id
    ON CONFLICT (task_id) DO UPDATE
        SET due_at = NULL, dirty = true, change_seq = EXCLUDED.change_seq, error = '';
    PERFORM pg_notify('orchestrator_beat_due', '');
END
$function$;

-- INSERT or UPDATE of django_celery_beat_periodictask (transition table "changed_rows").
CREATE OR REPLACE FUNCTION orchestrator_beat_task_changed() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $function$
BEGIN
    PERFORM orchestrator_beat_mark_dirty(ARRAY(SELECT id FROM changed_rows));
    RETURN NULL;
END
$function$;

-- DELETE of django_celery_beat_periodictask (transition table "gone_rows"): its due row goes too.
CREATE OR REPLACE FUNCTION orchestrator_beat_task_deleted() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $function$
BEGIN
    DELETE FROM celery_engine_beatdue AS d USING gone_rows AS g WHERE d.task_id = g.id;
    PERFORM pg_notify('orchestrator_beat_due', '');
    RETURN NULL;
END
$function$;

-- UPDATE of a schedule table (transition table "changed_rows"): every task using it changed.
CREATE OR REPLACE FUNCTION orchestrator_beat_schedule_changed() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $function$
BEGIN
    IF TG_TABLE_NAME = 'django_celery_beat_crontabschedule' THEN
        PERFORM orchestrator_beat_mark_dirty(ARRAY(
            SELECT t.id FROM django_celery_beat_periodictask AS t
            JOIN changed_rows AS c ON t.crontab_id = c.id));
    ELSIF TG_TABLE_NAME = 'django_celery_beat_intervalschedule' THEN
        PERFORM orchestrator_beat_mark_dirty(ARRAY(
            SELECT t.id FROM django_celery_beat_periodictask AS t
            JOIN changed_rows AS c ON t.interval_id = c.id));
    ELSIF TG_TABLE_NAME = 'django_celery_beat_clockedschedule' THEN
        PERFORM orchestrator_beat_mark_dirty(ARRAY(
            SELECT t.id FROM django_celery_beat_periodictask AS t
            JOIN changed_rows AS c ON t.clocked_id = c.id));
    ELSIF TG_TABLE_NAME = 'django_celery_beat_solarschedule' THEN
        PERFORM orchestrator_beat_mark_dirty(ARRAY(
            SELECT t.id FROM django_celery_beat_periodictask AS t
            JOIN changed_rows AS c ON t.solar_id = c.id));
    END IF;
    RETURN NULL;
END
$function$;

CREATE TRIGGER orchestrator_beat_task_inserted
    AFTER INSERT ON django_celery_beat_periodictask
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION orchestrator_beat_task_changed();
CREATE TRIGGER orchestrator_beat_task_updated
    AFTER UPDATE ON django_celery_beat_periodictask
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION orchestrator_beat_task_changed();
CREATE TRIGGER orchestrator_beat_task_deleted
    AFTER DELETE ON django_celery_beat_periodictask
    REFERENCING OLD TABLE AS gone_rows
    FOR EACH STATEMENT EXECUTE FUNCTION orchestrator_beat_task_deleted();

CREATE TRIGGER orchestrator_beat_crontab_updated
    AFTER UPDATE ON django_celery_beat_crontabschedule
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION orchestrator_beat_schedule_changed();
CREATE TRIGGER orchestrator_beat_interval_updated
    AFTER UPDATE ON django_celery_beat_intervalschedule
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION orchestrator_beat_schedule_changed();
CREATE TRIGGER orchestrator_beat_clocked_updated
    AFTER UPDATE ON django_celery_beat_clockedschedule
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION orchestrator_beat_schedule_changed();
CREATE TRIGGER orchestrator_beat_solar_updated
    AFTER UPDATE ON django_celery_beat_solarschedule
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION orchestrator_beat_schedule_changed();

-- Tasks that exist before this migration start dirty: the first leader computes them once.
INSERT INTO celery_engine_beatdue (task_id, dirty, error)
SELECT id, true, '' FROM django_celery_beat_periodictask
ON CONFLICT (task_id) DO NOTHING;
