-- Undo 0004_jobs_role_grants.sql: the functions run as their caller again, callable by anyone.
ALTER FUNCTION platform.refresh_performance_metrics() SECURITY INVOKER RESET search_path;
ALTER FUNCTION platform.collect_vector_stats(interval) SECURITY INVOKER RESET search_path;
GRANT EXECUTE ON FUNCTION platform.refresh_performance_metrics() TO PUBLIC;
GRANT EXECUTE ON FUNCTION platform.collect_vector_stats(interval) TO PUBLIC;
DO $revoke$
DECLARE
    jobs_role text := current_setting('orchestrator.jobs_role');
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = jobs_role) THEN
        RETURN;
    END IF;
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA platform, central REVOKE ALL ON TABLES '
                   'FROM %I', jobs_role);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA platform, central REVOKE ALL ON '
                   'SEQUENCES FROM %I', jobs_role);
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA platform, central FROM %I', jobs_role);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA platform, central FROM %I', jobs_role);
    EXECUTE format('REVOKE USAGE ON SCHEMA platform, central FROM %I', jobs_role);
END
$revoke$;
