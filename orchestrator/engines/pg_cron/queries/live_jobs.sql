-- Every pg_cron job this role can see: its own, and (scripts/jobs_role.sql's read policy) the
-- jobs role's; pg_cron's row-level security hides every other role's.
SELECT jobid, jobname, schedule, command, database, username, active
  FROM cron.job
 ORDER BY jobid
