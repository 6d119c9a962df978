DROP TRIGGER IF EXISTS orchestrator_count_updated_runs ON orchestrator_jobrun;
DROP TRIGGER IF EXISTS orchestrator_count_inserted_runs ON orchestrator_jobrun;
DROP FUNCTION IF EXISTS orchestrator_count_updated_runs();
DROP FUNCTION IF EXISTS orchestrator_count_inserted_runs();
DROP FUNCTION IF EXISTS orchestrator_add_run_counts(
    text[], text[], text[], double precision[], timestamptz[]);
DROP FUNCTION IF EXISTS orchestrator_run_duration_bounds();
