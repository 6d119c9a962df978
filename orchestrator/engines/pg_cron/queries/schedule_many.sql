-- Create many jobs in one round trip; every value arrives as an array parameter, sent in
-- binary (psycopg's "b" placeholders): a text array would escape every quote of every SQL
-- body in Python.
-- orchestrator_cron.schedule (scripts/jobs_role.sql, installed by a superuser) creates each job
-- to run as the jobs role, never as the role applying the manifest: pg_cron 1.4 lets only a
-- superuser name another role. pg_cron checks the schedule and that the jobs role may connect
-- to the database; a failure aborts the caller's whole transaction.
SELECT t.name,
       orchestrator_cron.schedule(t.name, t.schedule, t.command, t.database, t.active)
  FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::boolean[])
       AS t(name, schedule, command, database, active)
