-- Template: a retention function for pg_cron. Deletes exactly the rows strictly older than
-- now() - max_age and returns how many, so a job's run history shows what it did.
CREATE OR REPLACE FUNCTION platform.cleanup_example(max_age interval DEFAULT '30 days')
RETURNS bigint
LANGUAGE sql
AS $fn$
    WITH gone AS (
        DELETE FROM platform.example_events e
         WHERE e.created_at < now() - max_age
     RETURNING 1
    )
    SELECT count(*) FROM gone;
$fn$;
