-- The orchestrator's upkeep SQL jobs run as the jobs role (README, "Security"), which may not
-- touch the run history itself: a job could otherwise erase the record of its own runs. So the
-- three upkeep statements are SECURITY DEFINER functions of the role that owns the history,
-- with a fixed search_path, and the jobs role may call them and nothing else here.
--
-- * orchestrator_import_cron_runs(): reads pg_cron's run log as its owner, which
--   scripts/jobs_role.sql lets see the jobs role's runs.
-- * orchestrator_prune_run_history(days) / orchestrator_prune_cron_history(days): delete what
--   is older than that many days; the only input is a number. Each returns the rows deleted.
ALTER FUNCTION orchestrator_import_cron_runs() SECURITY DEFINER;
REVOKE EXECUTE ON FUNCTION orchestrator_import_cron_runs() FROM PUBLIC;

CREATE OR REPLACE FUNCTION orchestrator_prune_run_history(keep_days integer) RETURNS bigint
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $function$
    WITH gone AS (
        DELETE FROM public.orchestrator_jobrun
         WHERE coalesce(finished, started) < now() - make_interval(days => keep_days)
        RETURNING 1
    )
    SELECT count(*) FROM gone
$function$;
REVOKE EXECUTE ON FUNCTION orchestrator_prune_run_history(integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION orchestrator_prune_cron_history(keep_days integer) RETURNS bigint
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $function$
    WITH gone AS (
        DELETE FROM cron.job_run_details
         WHERE end_time < now() - make_interval(days => keep_days)
        RETURNING 1
    )
    SELECT count(*) FROM gone
$function$;
REVOKE EXECUTE ON FUNCTION orchestrator_prune_cron_history(integer) FROM PUBLIC;

DO $grants$
DECLARE
    jobs_role text := current_setting('orchestrator.jobs_role');
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = jobs_role) THEN
        RAISE NOTICE 'role % does not exist: nothing granted (scripts/jobs_role.sql)', jobs_role;
        RETURN;
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION orchestrator_import_cron_runs(), '
                   'orchestrator_prune_run_history(integer), '
                   'orchestrator_prune_cron_history(integer) TO %I', jobs_role);
END
$grants$;
