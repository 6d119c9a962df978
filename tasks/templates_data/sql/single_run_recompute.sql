-- Template: a whole-table recompute that must not run twice at once. The second caller
-- returns at once; the lock ends with the transaction, so a crash never leaves it held.
CREATE OR REPLACE FUNCTION platform.recompute_example()
RETURNS boolean
LANGUAGE plpgsql
AS $fn$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('platform.recompute_example')) THEN
        RETURN false;
    END IF;
    UPDATE platform.example_totals t
       SET total = s.total
      FROM (SELECT key, sum(amount) AS total FROM platform.example_events GROUP BY key) s
     WHERE t.key = s.key AND t.total IS DISTINCT FROM s.total;
    RETURN true;
END
$fn$;
