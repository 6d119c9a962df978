-- Create many jobs in one round trip; every value arrives as an array parameter.
-- The username is NULL, meaning the current role: pg_cron 1.4 refuses any explicit username
-- from a non-superuser, even its own. It checks the schedule and that the database exists; a
-- failure aborts the caller's whole transaction.
SELECT t.name,
       cron.schedule_in_database(t.name, t.schedule, t.command, t.database, NULL, t.active)
  FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::boolean[])
       AS t(name, schedule, command, database, active)
