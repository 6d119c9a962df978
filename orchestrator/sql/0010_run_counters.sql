-- Run counters fed by events: every time a run of orchestrator_jobrun reaches a finished status,
-- its (job, engine, status) row of orchestrator_runcounter is added to. /metrics reads these
-- rows, never the history, so pruning the history (orchestrator_prune_run_history) cannot make
-- a counter go down.
--
-- Statement-level triggers with transition tables see every write path at once (Celery's
-- signal handlers, the pg_cron importer's upsert, the lost-run sweep's UPDATE, bulk inserts)
-- and write one upsert per (job, engine, status) per statement, not one per row.
--
-- * "finished" is any status but 'queued' and 'running': a status added later is counted with
--   no change here or in the table (status is plain text).
-- * A row counts when it is inserted finished, or when an UPDATE changes its status to a
--   finished one; an UPDATE that leaves the status alone (a re-import, a message) counts
--   nothing. A run moved from one finished status to another counts under both.
-- * Durations go into a cumulative histogram over orchestrator_run_duration_bounds(): each run
--   is placed by one binary search (width_bucket), then counts are summed per slot and made
--   cumulative. Changing the bounds means a migration that resets duration_le.

CREATE OR REPLACE FUNCTION orchestrator_run_duration_bounds() RETURNS double precision[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $function$
    SELECT ARRAY[0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 10800, 21600]::double precision[]
$function$;

CREATE OR REPLACE FUNCTION orchestrator_add_run_counts(
    run_jobs text[], run_engines text[], run_statuses text[], run_seconds double precision[],
    run_finished timestamptz[]
) RETURNS void
LANGUAGE plpgsql  -- not sql: PL/pgSQL keeps the statement's plan; a SQL function replans per call
SET search_path = pg_catalog, public
AS $function$
DECLARE
    bounds CONSTANT double precision[] := orchestrator_run_duration_bounds();
    -- the bounds negated, ascending: width_bucket(-secs, below) counts the bounds >= secs
    below CONSTANT double precision[] := ARRAY(
        SELECT -b FROM unnest(bounds) WITH ORDINALITY AS u(b, i) ORDER BY i DESC);
BEGIN
    WITH runs AS (
        SELECT r.job, r.engine, r.status, r.secs, r.finished,
               -- bounds below the duration: its first "le" bound is the next one (0-based)
               cardinality(bounds) - width_bucket(-r.secs, below) AS slot
          FROM unnest(run_jobs, run_engines, run_statuses, run_seconds, run_finished)
               AS r(job, engine, status, secs, finished)
    ), totals AS (
        SELECT job, engine, status, count(*) AS runs, count(secs) AS timed,
               coalesce(sum(secs), 0) AS secs, max(finished) AS last_finished
          FROM runs
         GROUP BY job, engine, status
    ), slots AS (
        SELECT job, engine, status, slot, count(*) AS n
          FROM runs
         WHERE secs IS NOT NULL
         GROUP BY job, engine, status, slot
    ), cells AS (
        SELECT t.job, t.engine, t.status, b.i, coalesce(s.n, 0) AS n
          FROM totals AS t
         CROSS JOIN generate_series(0, cardinality(bounds) - 1) AS b(i)
          LEFT JOIN slots AS s
                 ON s.job = t.job AND s.engine = t.engine AND s.status = t.status
                AND s.slot = b.i
    ), histograms AS (
        SELECT job, engine, status, array_agg(le ORDER BY i) AS le
          FROM (SELECT job, engine, status, i,
                       (sum(n) OVER (PARTITION BY job, engine, status ORDER BY i))::bigint AS le
                  FROM cells) AS cumulative
         GROUP BY job, engine, status
    )
    INSERT INTO public.orchestrator_runcounter AS c
           (job, engine, status, runs, timed, duration_seconds, duration_le, last_finished,
            updated_at)
    SELECT t.job, t.engine, t.status, t.runs, t.timed, t.secs, h.le, t.last_finished, now()
      FROM totals AS t
      JOIN histograms AS h USING (job, engine, status)
     ORDER BY t.job, t.engine, t.status  -- one lock order for every writer: no deadlocks
    ON CONFLICT (job, engine, status) DO UPDATE
       SET runs = c.runs + EXCLUDED.runs,
           timed = c.timed + EXCLUDED.timed,
           duration_seconds = c.duration_seconds + EXCLUDED.duration_seconds,
           duration_le = ARRAY(
               SELECT coalesce(old, 0) + coalesce(new, 0)
                 FROM unnest(c.duration_le, EXCLUDED.duration_le) WITH ORDINALITY
                      AS u(old, new, i)
                ORDER BY i),
           last_finished = greatest(c.last_finished, EXCLUDED.last_finished),
           updated_at = EXCLUDED.updated_at;
END;
$function$;
REVOKE EXECUTE ON FUNCTION orchestrator_add_run_counts(
    text[], text[], text[], double precision[], timestamptz[]) FROM PUBLIC;

-- SECURITY DEFINER: whichever role writes a run (the web or worker role, or the owner through
-- the upkeep functions), the counters are written as the history's owner.
CREATE OR REPLACE FUNCTION orchestrator_count_inserted_runs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $function$
BEGIN
    PERFORM orchestrator_add_run_counts(
               array_agg(n.job), array_agg(n.engine), array_agg(n.status),
               array_agg(extract(epoch FROM n.duration)::double precision), array_agg(n.finished))
       FROM inserted_runs AS n
      WHERE n.status NOT IN ('queued', 'running')
     HAVING count(*) > 0;
    RETURN NULL;
END;
$function$;

CREATE OR REPLACE FUNCTION orchestrator_count_updated_runs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $function$
BEGIN
    PERFORM orchestrator_add_run_counts(
               array_agg(n.job), array_agg(n.engine), array_agg(n.status),
               array_agg(extract(epoch FROM n.duration)::double precision), array_agg(n.finished))
       FROM updated_runs AS n
       JOIN previous_runs AS o ON o.id = n.id
      WHERE n.status NOT IN ('queued', 'running') AND n.status IS DISTINCT FROM o.status
     HAVING count(*) > 0;
    RETURN NULL;
END;
$function$;

CREATE TRIGGER orchestrator_count_inserted_runs
AFTER INSERT ON orchestrator_jobrun
REFERENCING NEW TABLE AS inserted_runs
FOR EACH STATEMENT EXECUTE FUNCTION orchestrator_count_inserted_runs();

CREATE TRIGGER orchestrator_count_updated_runs
AFTER UPDATE ON orchestrator_jobrun
REFERENCING OLD TABLE AS previous_runs NEW TABLE AS updated_runs
FOR EACH STATEMENT EXECUTE FUNCTION orchestrator_count_updated_runs();

-- The history already recorded counts from here on, so an upgrade starts from what the
-- history still holds rather than from zero.
SELECT orchestrator_add_run_counts(
           array_agg(job), array_agg(engine), array_agg(status),
           array_agg(extract(epoch FROM duration)::double precision), array_agg(finished))
  FROM orchestrator_jobrun
 WHERE status NOT IN ('queued', 'running')
HAVING count(*) > 0;
