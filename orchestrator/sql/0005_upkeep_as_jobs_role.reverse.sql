-- Undo 0005_upkeep_as_jobs_role.sql.
DROP FUNCTION orchestrator_prune_cron_history(integer);
DROP FUNCTION orchestrator_prune_run_history(integer);
ALTER FUNCTION orchestrator_import_cron_runs() SECURITY INVOKER;
GRANT EXECUTE ON FUNCTION orchestrator_import_cron_runs() TO PUBLIC;
