-- orchestrator_import_cron_runs(), version 3: pg_cron never retries, so a failed run is imported
-- as failed_final ("failed for good"), the status of a run that failed after its last attempt
-- (docs/manifest.md, "Run statuses"). Otherwise version 2 (0007_run_traceback_call_and_search):
-- CREATE OR REPLACE keeps its owner (SECURITY DEFINER, as 0005 made it) and grants.
CREATE OR REPLACE FUNCTION orchestrator_import_cron_runs() RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $function$
DECLARE
    mark bigint;
    next_mark bigint;
    written bigint;
BEGIN
    -- One importer at a time; a second caller returns at once (the first does its work).
    IF NOT pg_try_advisory_xact_lock(1869771624, 1) THEN
        RETURN 0;
    END IF;
    INSERT INTO orchestrator_cronimportmark (id, open_from, imported)
    VALUES (1, 0, 0)
    ON CONFLICT (id) DO NOTHING;
    SELECT open_from INTO mark FROM orchestrator_cronimportmark WHERE id = 1;

    CREATE TEMPORARY TABLE IF NOT EXISTS orchestrator_cron_batch (
        runid bigint PRIMARY KEY,
        status text,
        start_time timestamptz
    ) ON COMMIT DROP;
    TRUNCATE orchestrator_cron_batch;

    WITH source AS (
        SELECT d.runid,
               left(coalesce(m.name, j.jobname, '#' || d.jobid::text), 63) AS job,
               d.job_pid,
               d.status,
               d.return_message,
               d.start_time,
               d.end_time,
               CASE WHEN j.schedule LIKE '% seconds' THEN date_trunc('second', d.start_time)
                    ELSE date_trunc('minute', d.start_time) END AS scheduled_for
          FROM cron.job_run_details AS d
          LEFT JOIN orchestrator_managedjob AS m
                 ON m.engine = 'pg_cron' AND m.engine_id = d.jobid::text
          LEFT JOIN cron.job AS j ON j.jobid = d.jobid
         WHERE d.runid >= mark
    ), batch AS (
        INSERT INTO orchestrator_cron_batch (runid, status, start_time)
        SELECT runid, status, start_time FROM source
    ), upserted AS (
        INSERT INTO orchestrator_jobrun AS r
               (job, engine, engine_run_id, attempt, delivery, status, manual, scheduled_for,
                started, finished, duration, worker, pid, message, traceback, updated_at)
        SELECT s.job, 'pg_cron', s.runid::text, 1, 1,
               CASE s.status
                   WHEN 'succeeded' THEN 'succeeded'
                   WHEN 'failed' THEN 'failed_final'  -- pg_cron never retries
                   WHEN 'running' THEN 'running'
                   ELSE 'queued'  -- starting, connecting, sending
               END,
               false, s.scheduled_for, s.start_time, s.end_time, s.end_time - s.start_time,
               '', s.job_pid, coalesce(s.return_message, ''),
               CASE WHEN s.status <> 'failed' OR s.return_message IS NULL THEN ''
                    WHEN length(s.return_message) <= 65536 THEN s.return_message
                    ELSE left(s.return_message, 4096)
                         || E'\n[… ' || (length(s.return_message) - 65536 + 64)::text
                         || E' characters cut …]\n'
                         || right(s.return_message, 65536 - 4096 - 64)
               END,
               now()
          FROM source AS s
        ON CONFLICT (engine, engine_run_id, attempt, delivery) DO UPDATE
           SET job = EXCLUDED.job,
               status = EXCLUDED.status,
               scheduled_for = EXCLUDED.scheduled_for,
               started = EXCLUDED.started,
               finished = EXCLUDED.finished,
               duration = EXCLUDED.duration,
               pid = EXCLUDED.pid,
               message = EXCLUDED.message,
               traceback = EXCLUDED.traceback,
               updated_at = EXCLUDED.updated_at
         WHERE (r.status, r.finished, r.message, r.job, r.pid, r.started)
               IS DISTINCT FROM
               (EXCLUDED.status, EXCLUDED.finished, EXCLUDED.message, EXCLUDED.job,
                EXCLUDED.pid, EXCLUDED.started)
        RETURNING 1
    )
    SELECT count(*) INTO written FROM upserted;

    -- Re-read unfinished runs next time, unless they started over a day ago (a run pg_cron
    -- lost track of must not pin the watermark forever; pg_cron marks those failed when its
    -- launcher restarts).
    SELECT coalesce(
               min(runid) FILTER (WHERE status NOT IN ('succeeded', 'failed')
                                   AND coalesce(start_time, now()) > now() - interval '1 day'),
               max(runid) + 1,
               mark)
      INTO next_mark
      FROM orchestrator_cron_batch;
    UPDATE orchestrator_cronimportmark
       SET open_from = greatest(next_mark, mark), last_import = now(), imported = written
     WHERE id = 1;
    TRUNCATE orchestrator_cron_batch;
    RETURN written;
END;
$function$;
