-- Reverse of 0005_pagerank_arrays: restore recalculate_all_pagerank() as 0003 defined it.

-- PageRank over platform.graph_nodes/graph_edges, written to graph_nodes.pagerank.
--
-- Power iteration, set-based: each iteration is one hash join of the edges with every node's
-- share (rank / out-degree) and one aggregate per target, so 1M edges take well under a second
-- an iteration. The rank of dangling nodes (no out-edges) is spread evenly over all nodes, so
-- the ranks always sum to 1. Parallel edges of different kinds count once. Stops after
-- max_iterations or when the L1 change of an iteration falls below tolerance. One run at a
-- time: a second concurrent call returns no row at once.
CREATE OR REPLACE FUNCTION platform.recalculate_all_pagerank(
    damping double precision DEFAULT 0.85,
    max_iterations integer DEFAULT 20,
    tolerance double precision DEFAULT 1e-6
)
RETURNS TABLE (nodes bigint, edges bigint, iterations integer, delta double precision,
               converged boolean)
LANGUAGE plpgsql
SET work_mem = '256MB'
AS $fn$
DECLARE
    started timestamptz := clock_timestamp();
    n bigint;
    m bigint;
    i integer := 0;
    change double precision := 'Infinity';
    dangling double precision;
    base double precision;
BEGIN
    IF damping < 0 OR damping >= 1 OR max_iterations < 1 OR tolerance < 0 THEN
        RAISE EXCEPTION 'recalculate_all_pagerank: need 0 <= damping < 1, max_iterations >= 1, '
                        'tolerance >= 0 (got %, %, %)', damping, max_iterations, tolerance;
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('platform.recalculate_all_pagerank')) THEN
        RAISE NOTICE 'recalculate_all_pagerank: another run is in progress; skipped';
        RETURN;
    END IF;

    -- Left over only by an earlier call in this same transaction (they drop at commit).
    IF to_regclass('pg_temp.pr_rank') IS NOT NULL THEN
        DROP TABLE pr_edge, pr_out, pr_rank;
    END IF;
    -- Sorted by target: the per-iteration aggregate then reads each target's edges together.
    CREATE TEMP TABLE pr_edge ON COMMIT DROP AS
        SELECT e.source_id AS src, e.target_id AS dst
          FROM platform.graph_edges e
         GROUP BY e.target_id, e.source_id
         ORDER BY e.target_id, e.source_id;
    CREATE TEMP TABLE pr_out ON COMMIT DROP AS
        SELECT src AS id, count(*)::double precision AS outdeg FROM pr_edge GROUP BY src;
    CREATE TEMP TABLE pr_rank ON COMMIT DROP AS
        SELECT g.id, 0::double precision AS rank, o.outdeg
          FROM platform.graph_nodes g LEFT JOIN pr_out o ON o.id = g.id;
    SELECT count(*) INTO n FROM pr_rank;
    SELECT count(*) INTO m FROM pr_edge;
    IF n = 0 THEN
        INSERT INTO platform.pagerank_runs
               (started_at, finished_at, nodes, edges, iterations, delta, converged)
        VALUES (started, clock_timestamp(), 0, 0, 0, 0, true);
        RETURN QUERY SELECT 0::bigint, 0::bigint, 0, 0::double precision, true;
        RETURN;
    END IF;
    EXECUTE 'UPDATE pr_rank SET rank = $1' USING 1.0 / n;
    ANALYZE pr_edge;
    ANALYZE pr_rank;

    WHILE i < max_iterations AND change >= tolerance LOOP
        EXECUTE 'SELECT coalesce(sum(rank), 0) FROM pr_rank WHERE outdeg IS NULL' INTO dangling;
        base := (1 - damping) / n + damping * dangling / n;
        EXECUTE $q$
            CREATE TEMP TABLE pr_next ON COMMIT DROP AS
            SELECT r.id, $1 + $2 * coalesce(s.incoming, 0) AS rank, r.outdeg,
                   r.rank AS previous
              FROM pr_rank r
              LEFT JOIN (SELECT e.dst, sum(c.share) AS incoming
                           FROM pr_edge e
                           JOIN (SELECT p.id, p.rank / p.outdeg AS share
                                   FROM pr_rank p WHERE p.outdeg IS NOT NULL) c
                             ON c.id = e.src
                          GROUP BY e.dst) s
                ON s.dst = r.id
        $q$ USING base, damping;
        EXECUTE 'SELECT sum(abs(rank - previous)) FROM pr_next' INTO change;
        DROP TABLE pr_rank;
        ALTER TABLE pr_next RENAME TO pr_rank;
        i := i + 1;
    END LOOP;

    UPDATE platform.graph_nodes g
       SET pagerank = r.rank, pagerank_updated_at = now()
      FROM pr_rank r
     WHERE g.id = r.id;
    INSERT INTO platform.pagerank_runs
           (started_at, finished_at, nodes, edges, iterations, delta, converged)
    VALUES (started, clock_timestamp(), n, m, i, change, change < tolerance);
    RETURN QUERY SELECT n, m, i, change, change < tolerance;
END
$fn$;
