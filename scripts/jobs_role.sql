-- The jobs role, and how the applying role schedules pg_cron jobs that run as it.
--
-- Run as a PostgreSQL superuser, connected to the database named by cron.database_name, after
-- CREATE EXTENSION pg_cron. Idempotent: run it again after a pg_cron upgrade or a password change.
-- psql variables (set with \set, or -v for those that are not secret):
--   app_role       the role that applies the manifest and owns the schema (e.g. orchestrator)
--   jobs_role      the role SQL jobs run as (e.g. orchestrator_jobs); created when missing
--   jobs_password  its password; prompted for when not set (never put it in argv)
--
-- What it sets up, and why (README, "Security"):
-- 1. jobs_role: LOGIN (pg_cron's background workers and the Celery runner log in as it),
--    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS, member of no role. It gets
--    only what the operator grants it; the migrations grant it what the shipped catalog needs.
-- 2. pg_cron 1.4 lets only a superuser create a job for another role, so schema
--    orchestrator_cron holds four SECURITY DEFINER functions owned by the superuser, with a fixed
--    search_path, that app_role alone may call: they create, alter and unschedule jobs that
--    always run as jobs_role, and touch no job of any other role (a hand-made job stays the
--    hand of its maker). The roles are read from orchestrator_cron.roles, never from callers.
-- 3. jobs_role has no access to schema cron (no hidden jobs, no erasing its own run history; the
--    upkeep jobs call app_role's functions for that), and cron.schedule/cron.unschedule and
--    DELETE on the run history are taken from PUBLIC; app_role keeps them (hand-made jobs, and
--    the upkeep functions that prune the history).
-- 4. Policies let app_role see jobs_role's rows of cron.job and cron.job_run_details (pg_cron's
--    own policy shows a role only its own), for plans, history import and heartbeat, and prune
--    that run history.

\set ON_ERROR_STOP on
\if :{?jobs_password}
\else
\prompt 'Password for the jobs role: ' jobs_password
\endif
SET client_min_messages = warning;

SELECT format('CREATE ROLE %I LOGIN', :'jobs_role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'jobs_role') \gexec
ALTER ROLE :"jobs_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  INHERIT PASSWORD :'jobs_password';
-- Member of no role (least of all app_role): revoke whatever memberships it was given.
SELECT format('REVOKE %I FROM %I', r.rolname, :'jobs_role')
  FROM pg_auth_members AS m
  JOIN pg_roles AS r ON r.oid = m.roleid
 WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = :'jobs_role') \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), :'jobs_role')
\gexec

-- 3. Scheduling stays with app_role (and superusers).
REVOKE EXECUTE ON FUNCTION cron.schedule(text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION cron.schedule(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION cron.unschedule(bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION cron.unschedule(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cron.schedule(text, text), cron.schedule(text, text, text),
  cron.unschedule(bigint), cron.unschedule(name) TO :"app_role";
REVOKE DELETE ON cron.job_run_details FROM PUBLIC;
GRANT DELETE ON cron.job_run_details TO :"app_role";
GRANT USAGE ON SCHEMA cron TO :"app_role";
REVOKE ALL ON SCHEMA cron FROM :"jobs_role";

-- 4. app_role reads jobs_role's pg_cron rows (permissive policies of one command are OR-ed), and
--    may prune their run history.
DROP POLICY IF EXISTS orchestrator_applier_reads ON cron.job;
CREATE POLICY orchestrator_applier_reads ON cron.job FOR SELECT TO :"app_role"
  USING (username = :'jobs_role');
DROP POLICY IF EXISTS orchestrator_applier_reads ON cron.job_run_details;
CREATE POLICY orchestrator_applier_reads ON cron.job_run_details FOR SELECT TO :"app_role"
  USING (username = :'jobs_role');
DROP POLICY IF EXISTS orchestrator_applier_prunes ON cron.job_run_details;
CREATE POLICY orchestrator_applier_prunes ON cron.job_run_details FOR DELETE TO :"app_role"
  USING (username = :'jobs_role');

-- 2. The scheduling functions.
CREATE SCHEMA IF NOT EXISTS orchestrator_cron;
REVOKE ALL ON SCHEMA orchestrator_cron FROM PUBLIC;
GRANT USAGE ON SCHEMA orchestrator_cron TO :"app_role";

CREATE TABLE IF NOT EXISTS orchestrator_cron.roles (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    applier name NOT NULL,
    jobs name NOT NULL
);
REVOKE ALL ON orchestrator_cron.roles FROM PUBLIC;
GRANT SELECT ON orchestrator_cron.roles TO :"app_role";
INSERT INTO orchestrator_cron.roles (applier, jobs) VALUES (:'app_role', :'jobs_role')
ON CONFLICT (only_row) DO UPDATE SET applier = EXCLUDED.applier, jobs = EXCLUDED.jobs;

-- The owner of a job the orchestrator may change: jobs_role, or app_role (jobs scheduled before
-- the jobs role existed; altering one hands it to jobs_role). Anything else is refused.
CREATE OR REPLACE FUNCTION orchestrator_cron.own_job(job_id bigint)
RETURNS orchestrator_cron.roles
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    r orchestrator_cron.roles;
    owner text;
BEGIN
    SELECT * INTO STRICT r FROM orchestrator_cron.roles;
    SELECT j.username INTO owner FROM cron.job AS j WHERE j.jobid = job_id;
    IF owner IS NULL THEN
        RAISE EXCEPTION 'pg_cron job % does not exist', job_id USING ERRCODE = 'no_data_found';
    END IF;
    IF owner <> r.jobs AND owner <> r.applier THEN
        RAISE EXCEPTION 'pg_cron job % runs as role %, which the orchestrator does not manage',
            job_id, owner USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN r;
END;
$function$;

CREATE OR REPLACE FUNCTION orchestrator_cron.schedule(
    job_name text, schedule text, command text, database text, active boolean)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    r orchestrator_cron.roles;
BEGIN
    SELECT * INTO STRICT r FROM orchestrator_cron.roles;
    RETURN cron.schedule_in_database(job_name, schedule, command, database, r.jobs, active);
END;
$function$;

CREATE OR REPLACE FUNCTION orchestrator_cron.alter_job(
    job_id bigint, schedule text, command text, database text, active boolean)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    r orchestrator_cron.roles := orchestrator_cron.own_job(job_id);
BEGIN
    PERFORM cron.alter_job(job_id, schedule, command, database, r.jobs, active);
END;
$function$;

CREATE OR REPLACE FUNCTION orchestrator_cron.unschedule(job_id bigint)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    PERFORM orchestrator_cron.own_job(job_id);
    RETURN cron.unschedule(job_id);
END;
$function$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA orchestrator_cron FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orchestrator_cron.schedule(text, text, text, text, boolean),
  orchestrator_cron.alter_job(bigint, text, text, text, boolean),
  orchestrator_cron.unschedule(bigint) TO :"app_role";
