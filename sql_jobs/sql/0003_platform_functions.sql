-- The SQL functions the pure-SQL jobs of jobs.yaml call (pg_cron runs them in the database).
--
-- Every function is idempotent (a second run with nothing new to do changes nothing) and safe
-- when two runs meet: work that is claimed row by row uses FOR UPDATE SKIP LOCKED, so two runs
-- split the rows instead of both counting them; a whole-table recompute takes a transaction-level
-- advisory lock and a second, concurrent run returns at once without doing the work twice.
-- Loaded by sql_jobs/migrations/0003_platform_functions.py; undone by the .reverse.sql file.

-- ------------------------------------------------------------------ learning

-- Count every not-yet-learned analysis result into learned_patterns, exactly once, and promote
-- patterns seen often enough to knowledge artifacts. Returns how many results were learned.
CREATE OR REPLACE FUNCTION platform.learn_patterns_from_analysis(batch_size integer DEFAULT 10000)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    learned integer;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS learn_batch (
        category text, rule text, language text, occurrences bigint,
        first_seen timestamptz, last_seen timestamptz
    ) ON COMMIT DROP;
    TRUNCATE learn_batch;

    WITH claimed AS (
        SELECT r.id
          FROM platform.analysis_results r
         WHERE r.learned_at IS NULL
         ORDER BY r.id
         LIMIT batch_size
           FOR UPDATE SKIP LOCKED
    ), marked AS (
        UPDATE platform.analysis_results r
           SET learned_at = now()
          FROM claimed c
         WHERE r.id = c.id
     RETURNING r.category, r.rule, r.language, r.created_at
    )
    INSERT INTO learn_batch
    SELECT m.category, m.rule, m.language, count(*), min(m.created_at), max(m.created_at)
      FROM marked m
     GROUP BY m.category, m.rule, m.language;

    SELECT coalesce(sum(b.occurrences), 0)::integer INTO learned FROM learn_batch b;
    IF learned = 0 THEN
        RETURN 0;
    END IF;

    -- Sorted so that two runs touching the same patterns take their row locks in one order.
    INSERT INTO platform.learned_patterns AS p
           (pattern_key, category, rule, language, occurrences, confidence,
            first_seen_at, last_seen_at)
    SELECT b.category || ':' || b.rule || ':' || b.language, b.category, b.rule, b.language,
           b.occurrences, b.occurrences::double precision / (b.occurrences + 10),
           b.first_seen, b.last_seen
      FROM learn_batch b
     ORDER BY 1
    ON CONFLICT (pattern_key) DO UPDATE
       SET occurrences   = p.occurrences + excluded.occurrences,
           confidence    = (p.occurrences + excluded.occurrences)::double precision
                           / (p.occurrences + excluded.occurrences + 10),
           first_seen_at = least(p.first_seen_at, excluded.first_seen_at),
           last_seen_at  = greatest(p.last_seen_at, excluded.last_seen_at),
           updated_at    = now(),
           version       = p.version + 1;

    -- A pattern seen at least three times is knowledge worth keeping.
    INSERT INTO platform.knowledge_artifacts AS a
           (artifact_type, name, source, content, content_hash)
    SELECT 'learned_pattern', p.pattern_key, 'learn_patterns_from_analysis', c.content,
           md5(c.content::text)
      FROM platform.learned_patterns p
      JOIN learn_batch b
        ON p.pattern_key = b.category || ':' || b.rule || ':' || b.language
     CROSS JOIN LATERAL (
           SELECT jsonb_build_object(
                      'category', p.category, 'rule', p.rule, 'language', p.language,
                      'occurrences', p.occurrences, 'confidence', round(p.confidence::numeric, 4)
                  ) AS content
          ) c
     WHERE p.occurrences >= 3
     ORDER BY p.pattern_key
    ON CONFLICT (artifact_type, name) DO UPDATE
       SET content = excluded.content,
           content_hash = excluded.content_hash,
           updated_at = now()
     WHERE a.content_hash IS DISTINCT FROM excluded.content_hash;

    RETURN learned;
END
$fn$;

-- Send every learned pattern that changed since its last sync to the central database.
-- Returns how many patterns were sent.
CREATE OR REPLACE FUNCTION platform.sync_learning_to_centralcloud(
    instance text DEFAULT current_database()
)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
#variable_conflict use_column
DECLARE
    sent integer;
BEGIN
    WITH claimed AS (
        SELECT p.id, p.pattern_key, p.category, p.rule, p.language, p.occurrences,
               p.confidence, p.last_seen_at, p.version
          FROM platform.learned_patterns p
         WHERE p.synced_version IS DISTINCT FROM p.version
         ORDER BY p.id
           FOR UPDATE SKIP LOCKED
    ), delivered AS (
        INSERT INTO central.learned_patterns AS c
               (instance, pattern_key, category, rule, language, occurrences, confidence,
                last_seen_at)
        SELECT sync_learning_to_centralcloud.instance, k.pattern_key, k.category, k.rule,
               k.language, k.occurrences, k.confidence, k.last_seen_at
          FROM claimed k
        ON CONFLICT (instance, pattern_key) DO UPDATE
           SET occurrences  = excluded.occurrences,
               confidence   = excluded.confidence,
               last_seen_at = excluded.last_seen_at,
               received_at  = now()
        RETURNING c.pattern_key
    )
    UPDATE platform.learned_patterns p
       SET synced_version = k.version,
           synced_at = now()
      FROM claimed k
     WHERE p.id = k.id
       AND k.pattern_key IN (SELECT d.pattern_key FROM delivered d);
    GET DIAGNOSTICS sent = ROW_COUNT;
    RETURN sent;
END
$fn$;

-- Recompute each agent's knowledge summary from the learned patterns of its capabilities and
-- its task record; count how many agents use each learned-pattern artifact. Returns how many
-- agents' knowledge changed (0 on a second run with nothing new, or when another run is busy).
CREATE OR REPLACE FUNCTION platform.update_agent_knowledge(top_patterns integer DEFAULT 10)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    changed integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('platform.update_agent_knowledge')) THEN
        RAISE NOTICE 'update_agent_knowledge: another run is in progress; skipped';
        RETURN 0;
    END IF;

    WITH summary AS (
        SELECT a.id,
               jsonb_build_object(
                   'patterns', coalesce((
                       SELECT jsonb_agg(jsonb_build_object(
                                  'pattern', p.pattern_key,
                                  'occurrences', p.occurrences,
                                  'confidence', round(p.confidence::numeric, 4))
                              ORDER BY p.occurrences DESC, p.pattern_key)
                         FROM (SELECT lp.pattern_key, lp.occurrences, lp.confidence
                                 FROM platform.learned_patterns lp
                                WHERE cardinality(a.capabilities) = 0
                                   OR lp.category = ANY (a.capabilities)
                                ORDER BY lp.occurrences DESC, lp.pattern_key
                                LIMIT top_patterns) p), '[]'::jsonb),
                   'tasks', (
                       SELECT jsonb_build_object(
                                  'completed', count(*) FILTER (WHERE t.status = 'completed'),
                                  'failed', count(*) FILTER (WHERE t.status = 'failed'),
                                  'active', count(*) FILTER (WHERE t.status IN ('assigned',
                                                                                 'running')))
                         FROM platform.agent_tasks t
                        WHERE t.agent_id = a.id)
               ) AS knowledge
          FROM platform.agents a
    )
    UPDATE platform.agents a
       SET knowledge = s.knowledge,
           knowledge_updated_at = now()
      FROM summary s
     WHERE a.id = s.id
       AND a.knowledge IS DISTINCT FROM s.knowledge;
    GET DIAGNOSTICS changed = ROW_COUNT;

    WITH usage AS (
        SELECT k.id, count(a.id) AS agents
          FROM platform.knowledge_artifacts k
          LEFT JOIN platform.agents a
            ON a.knowledge -> 'patterns' @> jsonb_build_array(jsonb_build_object('pattern', k.name))
         WHERE k.artifact_type = 'learned_pattern'
         GROUP BY k.id
    )
    UPDATE platform.knowledge_artifacts k
       SET usage_count = u.agents,
           last_used_at = CASE WHEN u.agents > 0 THEN now() ELSE k.last_used_at END
      FROM usage u
     WHERE k.id = u.id
       AND (k.usage_count <> u.agents OR u.agents > 0);

    RETURN changed;
END
$fn$;

-- ------------------------------------------------------------------ agents

-- Give pending tasks to agents with free capacity and the required capability, highest priority
-- first. Agents and tasks are both claimed with SKIP LOCKED, so concurrent callers work on
-- different agents and different tasks: no task is assigned twice and no agent is overfilled.
-- Returns how many tasks were assigned.
CREATE OR REPLACE FUNCTION platform.assign_pending_tasks(batch_limit integer DEFAULT 1000)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    agent record;
    free integer;
    got integer;
    assigned integer := 0;
BEGIN
    FOR agent IN
        SELECT a.id, a.capabilities, a.max_concurrent
          FROM platform.agents a
         WHERE a.status <> 'offline'
         ORDER BY a.id
           FOR UPDATE SKIP LOCKED
    LOOP
        EXIT WHEN assigned >= batch_limit;
        -- Counted after the agent's row lock is held, in a fresh snapshot: assignments that
        -- another caller committed for this agent are included.
        SELECT agent.max_concurrent - count(*) INTO free
          FROM platform.agent_tasks t
         WHERE t.agent_id = agent.id AND t.status IN ('assigned', 'running');
        got := 0;
        IF free > 0 THEN
            WITH claimed AS (
                SELECT t.id
                  FROM platform.agent_tasks t
                 WHERE t.status = 'pending'
                   AND (t.required_capability IS NULL
                        OR t.required_capability = ANY (agent.capabilities))
                 ORDER BY t.priority DESC, t.created_at, t.id
                 LIMIT least(free, batch_limit - assigned)
                   FOR UPDATE SKIP LOCKED
            ), moved AS (
                UPDATE platform.agent_tasks t
                   SET status = 'assigned', agent_id = agent.id, assigned_at = now()
                  FROM claimed c
                 WHERE t.id = c.id AND t.status = 'pending'
             RETURNING t.id
            )
            INSERT INTO platform.task_assignments (task_id, agent_id)
            SELECT m.id, agent.id FROM moved m;
            GET DIAGNOSTICS got = ROW_COUNT;
            assigned := assigned + got;
        END IF;
        UPDATE platform.agents a
           SET status = CASE WHEN free - got <= 0 THEN 'busy' ELSE 'idle' END
         WHERE a.id = agent.id
           AND a.status IS DISTINCT FROM CASE WHEN free - got <= 0 THEN 'busy' ELSE 'idle' END;
    END LOOP;
    RETURN assigned;
END
$fn$;

-- ------------------------------------------------------------------ metrics

-- Refresh the per-agent performance view; concurrently once populated, so readers never wait.
-- Returns the number of rows in the view, or NULL when another refresh is already running.
CREATE OR REPLACE FUNCTION platform.refresh_performance_metrics()
RETURNS bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
    populated boolean;
    total bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('platform.refresh_performance_metrics')) THEN
        RAISE NOTICE 'refresh_performance_metrics: another run is in progress; skipped';
        RETURN NULL;
    END IF;
    SELECT c.relispopulated INTO populated
      FROM pg_class c
     WHERE c.oid = 'platform.performance_metrics'::regclass;
    IF populated THEN
        REFRESH MATERIALIZED VIEW CONCURRENTLY platform.performance_metrics;
    ELSE
        REFRESH MATERIALIZED VIEW platform.performance_metrics;
    END IF;
    SELECT count(*) INTO total FROM platform.performance_metrics;
    RETURN total;
END
$fn$;

-- Count the stored embeddings per table, model and dimension (and how many are stale: missing,
-- or computed from older text), refresh the planner's statistics of those tables, and keep 90
-- days of these snapshots. Returns how many stats rows were written.
CREATE OR REPLACE FUNCTION platform.collect_vector_stats(keep interval DEFAULT '90 days')
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    written integer;
    at timestamptz := now();
BEGIN
    ANALYZE platform.code_chunks;
    ANALYZE platform.templates;
    INSERT INTO platform.vector_stats
           (collected_at, table_name, embedding_model, embedding_dim, rows, stale_rows, avg_norm)
    SELECT at, s.table_name, s.embedding_model, s.embedding_dim, count(*),
           count(*) FILTER (WHERE s.embedding IS NULL OR s.embedded_hash IS DISTINCT FROM s.content_hash),
           avg((SELECT sqrt(sum(x * x)) FROM unnest(s.embedding) AS x))
      FROM (SELECT 'code_chunks' AS table_name, c.embedding_model, c.embedding_dim, c.embedding,
                   c.embedded_hash, c.content_hash
              FROM platform.code_chunks c
            UNION ALL
            SELECT 'templates', t.embedding_model, t.embedding_dim, t.embedding, t.embedded_hash,
                   t.content_hash
              FROM platform.templates t) s
     GROUP BY s.table_name, s.embedding_model, s.embedding_dim;
    GET DIAGNOSTICS written = ROW_COUNT;
    DELETE FROM platform.vector_stats v WHERE v.collected_at < at - keep;
    RETURN written;
END
$fn$;

-- ------------------------------------------------------------------ graph

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

-- ------------------------------------------------------------------ retention

-- Each deletes exactly the rows strictly older than now() - max_age and returns how many.

-- Finished agent tasks (the platform's job queue; the seed's "old Oban jobs").
CREATE OR REPLACE FUNCTION platform.cleanup_old_jobs(max_age interval DEFAULT '30 days')
RETURNS bigint
LANGUAGE sql
AS $fn$
    WITH gone AS (
        DELETE FROM platform.agent_tasks t
         WHERE t.status IN ('completed', 'failed', 'cancelled')
           AND t.completed_at < now() - max_age
     RETURNING 1
    )
    SELECT count(*) FROM gone;
$fn$;

-- Learned-pattern artifacts that no agent has used for max_age.
CREATE OR REPLACE FUNCTION platform.cleanup_unused_artifacts(max_age interval DEFAULT '90 days')
RETURNS bigint
LANGUAGE sql
AS $fn$
    WITH gone AS (
        DELETE FROM platform.knowledge_artifacts k
         WHERE k.artifact_type = 'learned_pattern'
           AND k.usage_count = 0
           AND coalesce(k.last_used_at, k.updated_at) < now() - max_age
     RETURNING 1
    )
    SELECT count(*) FROM gone;
$fn$;

-- Code chunks that no ingest has seen for max_age: their file or their place in it is gone.
CREATE OR REPLACE FUNCTION platform.cleanup_obsolete_code_chunks(max_age interval DEFAULT '14 days')
RETURNS bigint
LANGUAGE sql
AS $fn$
    WITH gone AS (
        DELETE FROM platform.code_chunks c
         WHERE c.seen_at < now() - max_age
     RETURNING 1
    )
    SELECT count(*) FROM gone;
$fn$;

-- Move the records of finished backups older than max_age into backup_archive.
CREATE OR REPLACE FUNCTION platform.archive_backup_metadata(max_age interval DEFAULT '90 days')
RETURNS bigint
LANGUAGE sql
AS $fn$
    WITH moved AS (
        DELETE FROM platform.backup_metadata b
         WHERE b.status <> 'running'
           AND b.started_at < now() - max_age
     RETURNING b.*
    ), archived AS (
        INSERT INTO platform.backup_archive
        SELECT m.*, now() FROM moved m
        ON CONFLICT (id) DO NOTHING
        RETURNING 1
    )
    SELECT count(*) FROM moved;
$fn$;
