DROP FUNCTION IF EXISTS orchestrator_import_cron_runs();
