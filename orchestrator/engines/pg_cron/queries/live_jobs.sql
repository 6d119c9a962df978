-- Every pg_cron job this role can see (pg_cron's row-level security shows a role its own jobs).
SELECT jobid, jobname, schedule, command, database, username, active
  FROM cron.job
 ORDER BY jobid
