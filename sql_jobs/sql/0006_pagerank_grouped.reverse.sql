-- Reverse of 0006_pagerank_grouped: restore recalculate_all_pagerank() as 0005 defined it.

-- PageRank, rewritten for speed: replaces recalculate_all_pagerank() of 0003 (same arguments,
-- same result row, same ranks to rounding).
--
-- Why the rewrite: 0003 built a new temporary table per iteration (a hash join of every edge
-- with every node's share, an aggregate, and a left join back to every node) and read it again
-- for the change; 100,000 nodes / 1,000,000 edges took 1.2 s an iteration. Here the ranks live
-- in arrays indexed by dense integer keys (1..n), so an iteration is one pass over the edge
-- table, summing share[src] per target (an array subscript instead of a join), and one pass
-- over three 100,000-element arrays that yields the next shares, the dangling mass and the
-- change together. Node ids are used as keys directly (id - min + 1) when they are dense, the
-- usual case for an identity column; otherwise a key table maps them.
--
-- The rules are unchanged: dangling mass (nodes without out-edges) is spread evenly over all
-- nodes, parallel edges of different kinds count once, the run stops after max_iterations or
-- when the L1 change of an iteration falls below tolerance, and one run at a time (a second
-- concurrent call returns no row at once).
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
    n integer;
    m bigint;
    low bigint;
    high bigint;
    dense boolean;
    i integer := 0;
    change double precision := 'Infinity';
    dangling double precision;
    base double precision;
    v_outdeg double precision[];
    v_share double precision[];
    v_rank double precision[];
    v_previous double precision[];
BEGIN
    IF damping < 0 OR damping >= 1 OR max_iterations < 1 OR tolerance < 0 THEN
        RAISE EXCEPTION 'recalculate_all_pagerank: need 0 <= damping < 1, max_iterations >= 1, '
                        'tolerance >= 0 (got %, %, %)', damping, max_iterations, tolerance;
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('platform.recalculate_all_pagerank')) THEN
        RAISE NOTICE 'recalculate_all_pagerank: another run is in progress; skipped';
        RETURN;
    END IF;

    SELECT count(*), min(g.id), max(g.id) INTO n, low, high FROM platform.graph_nodes g;
    IF n = 0 THEN
        INSERT INTO platform.pagerank_runs
               (started_at, finished_at, nodes, edges, iterations, delta, converged)
        VALUES (started, clock_timestamp(), 0, 0, 0, 0, true);
        RETURN QUERY SELECT 0::bigint, 0::bigint, 0, 0::double precision, true;
        RETURN;
    END IF;
    dense := high - low + 1 = n;

    -- Left over only by an earlier call in this same transaction (they drop at commit).
    IF to_regclass('pg_temp.pr_edge') IS NOT NULL THEN
        DROP TABLE pg_temp.pr_edge;
    END IF;
    IF to_regclass('pg_temp.pr_key') IS NOT NULL THEN
        DROP TABLE pg_temp.pr_key;
    END IF;
    -- Stored in target order: the per-iteration aggregate then finds each target's group where
    -- it left the previous one, instead of anywhere in a 100,000-entry hash table.
    CREATE TEMP TABLE pr_edge (src integer NOT NULL, dst integer NOT NULL) ON COMMIT DROP;
    IF dense THEN
        INSERT INTO pr_edge (src, dst)
        SELECT (e.source_id - low + 1)::integer, (e.target_id - low + 1)::integer
          FROM platform.graph_edges e
         WHERE e.source_id BETWEEN low AND high AND e.target_id BETWEEN low AND high
         GROUP BY e.target_id, e.source_id
         ORDER BY e.target_id, e.source_id;
    ELSE
        CREATE TEMP TABLE pr_key ON COMMIT DROP AS
            SELECT g.id, (row_number() OVER (ORDER BY g.id))::integer AS k
              FROM platform.graph_nodes g;
        ANALYZE pr_key;
        INSERT INTO pr_edge (src, dst)
        SELECT s.k, t.k
          FROM (SELECT e.source_id, e.target_id FROM platform.graph_edges e
                 GROUP BY e.source_id, e.target_id) d
          JOIN pr_key s ON s.id = d.source_id
          JOIN pr_key t ON t.id = d.target_id
         ORDER BY t.k, s.k;
        n := (SELECT count(*) FROM pr_key);
    END IF;
    ANALYZE pr_edge;
    SELECT count(*) INTO m FROM pr_edge;

    SELECT array_agg(coalesce(o.out_edges, 0)::double precision ORDER BY g.k)
      INTO v_outdeg
      FROM generate_series(1, n) AS g(k)
      LEFT JOIN (SELECT e.src, count(*) AS out_edges FROM pr_edge e GROUP BY e.src) o
        ON o.src = g.k;
    v_rank := array_fill(1.0::double precision / n, ARRAY[n]);
    SELECT array_agg(CASE WHEN u.o > 0 THEN u.r / u.o ELSE 0 END ORDER BY u.k),
           coalesce(sum(u.r) FILTER (WHERE u.o = 0), 0)
      INTO v_share, dangling
      FROM unnest(v_rank, v_outdeg) WITH ORDINALITY AS u(r, o, k);

    WHILE i < max_iterations AND change >= tolerance LOOP
        base := (1 - damping) / n + damping * dangling / n;
        v_previous := v_rank;
        SELECT array_agg(base + damping * coalesce(x.incoming, 0) ORDER BY g.k)
          INTO v_rank
          FROM generate_series(1, n) AS g(k)
          LEFT JOIN (SELECT e.dst, sum(v_share[e.src]) AS incoming
                       FROM pr_edge e GROUP BY e.dst) x
            ON x.dst = g.k;
        SELECT array_agg(CASE WHEN u.o > 0 THEN u.r / u.o ELSE 0 END ORDER BY u.k),
               coalesce(sum(u.r) FILTER (WHERE u.o = 0), 0),
               coalesce(sum(abs(u.r - u.p)), 0)
          INTO v_share, dangling, change
          FROM unnest(v_rank, v_previous, v_outdeg) WITH ORDINALITY AS u(r, p, o, k);
        i := i + 1;
    END LOOP;

    IF dense THEN
        UPDATE platform.graph_nodes g
           SET pagerank = v_rank[(g.id - low + 1)::integer], pagerank_updated_at = now()
         WHERE g.id BETWEEN low AND high;
    ELSE
        UPDATE platform.graph_nodes g
           SET pagerank = v_rank[k.k], pagerank_updated_at = now()
          FROM pr_key k
         WHERE k.id = g.id;
    END IF;
    INSERT INTO platform.pagerank_runs
           (started_at, finished_at, nodes, edges, iterations, delta, converged)
    VALUES (started, clock_timestamp(), n, m, i, change, change < tolerance);
    RETURN QUERY SELECT n::bigint, m, i, change, change < tolerance;
END
$fn$;
