-- Overwrite many jobs in one round trip (keeps each job's id and run history). The wrapper
-- alters only jobs of the jobs role (or of the applying role, which it hands to the jobs role).
-- Arrays are sent in binary, like schedule_many.
SELECT orchestrator_cron.alter_job(t.jobid, t.schedule, t.command, t.database, t.active)
  FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[], %b::boolean[])
       AS t(jobid, schedule, command, database, active)
