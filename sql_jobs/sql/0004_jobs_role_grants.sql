-- What the shipped catalog's SQL jobs need, granted to the jobs role (README, "Security").
--
-- Run by the role that applies the manifest and owns these objects (a migration), with the
-- jobs role's name in the setting orchestrator.jobs_role (project/sqlfiles.py). The jobs role is
-- created by a superuser (scripts/jobs_role.sql); when it does not exist yet, nothing is granted
-- and a NOTICE says so (grant by hand as the README shows).
--
-- * The platform's data: read and write rows of every table, view and sequence in schemas
--   platform and central, now and (default privileges) of the tables later migrations add.
-- * Work PostgreSQL reserves for an object's owner (REFRESH MATERIALIZED VIEW, ANALYZE) is done
--   by the two catalog functions that need it, as SECURITY DEFINER with a fixed search_path:
--   the job may call them, not run the statements.
ALTER FUNCTION platform.refresh_performance_metrics()
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION platform.collect_vector_stats(interval)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE EXECUTE ON FUNCTION platform.refresh_performance_metrics() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION platform.collect_vector_stats(interval) FROM PUBLIC;

DO $grants$
DECLARE
    jobs_role text := current_setting('orchestrator.jobs_role');
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = jobs_role) THEN
        RAISE NOTICE 'role % does not exist: nothing granted (scripts/jobs_role.sql)', jobs_role;
        RETURN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA platform, central TO %I', jobs_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA platform, '
                   'central TO %I', jobs_role);
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA platform, central '
                   'TO %I', jobs_role);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA platform, central GRANT SELECT, INSERT, '
                   'UPDATE, DELETE ON TABLES TO %I', jobs_role);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA platform, central GRANT USAGE, SELECT, '
                   'UPDATE ON SEQUENCES TO %I', jobs_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION platform.refresh_performance_metrics(), '
                   'platform.collect_vector_stats(interval) TO %I', jobs_role);
END
$grants$;
