-- Overwrite many jobs in one round trip (cron.alter_job keeps each job's id and run history).
-- NULL username: keep the owner (pg_cron 1.4 refuses any username from a non-superuser).
SELECT cron.alter_job(t.jobid, t.schedule, t.command, t.database, NULL, t.active)
  FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::boolean[])
       AS t(jobid, schedule, command, database, active)
