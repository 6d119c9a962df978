-- The platform's own data: a knowledge/agent system whose upkeep the shipped jobs.yaml runs.
--
-- Everything lives in schema "platform" (and "central", standing in for the central database
-- that learnings are synced to), so none of it can collide with Django's tables in "public".
-- Loaded by sql_jobs/migrations/0002_platform_schema.py; undone by the .reverse.sql file.

CREATE SCHEMA IF NOT EXISTS platform;
CREATE SCHEMA IF NOT EXISTS central;

-- ------------------------------------------------------------------ analysis and learning

-- One finding of an analyzer (registry sync runs them over the ingested code). learned_at is
-- set once pattern learning has counted the row, so every finding is learned exactly once.
CREATE TABLE platform.analysis_results (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    analyzer     text        NOT NULL,
    category     text        NOT NULL,
    rule         text        NOT NULL,
    language     text        NOT NULL DEFAULT 'python',
    severity     text        NOT NULL DEFAULT 'info'
                 CHECK (severity IN ('info', 'warning', 'error')),
    path         text        NOT NULL,
    line         integer,
    message      text        NOT NULL,
    fingerprint  text        NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    learned_at   timestamptz
);
CREATE INDEX analysis_results_unlearned ON platform.analysis_results (id) WHERE learned_at IS NULL;

-- What the analysis results add up to: one row per (category, rule, language).
CREATE TABLE platform.learned_patterns (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pattern_key   text             NOT NULL UNIQUE,
    category      text             NOT NULL,
    rule          text             NOT NULL,
    language      text             NOT NULL,
    occurrences   bigint           NOT NULL DEFAULT 0 CHECK (occurrences >= 0),
    confidence    double precision NOT NULL DEFAULT 0 CHECK (confidence BETWEEN 0 AND 1),
    first_seen_at timestamptz      NOT NULL,
    last_seen_at  timestamptz      NOT NULL,
    updated_at    timestamptz      NOT NULL DEFAULT now(),
    -- A counter, not a timestamp, decides what the central sync still owes: a learning
    -- transaction that started before a sync but committed after it would carry an older
    -- updated_at than the sync's and be missed; a version bump never is.
    version        bigint          NOT NULL DEFAULT 1,
    synced_version bigint,
    synced_at      timestamptz
);

-- Reusable knowledge: loaded from JSON (knowledge migration) or promoted from learned patterns.
CREATE TABLE platform.knowledge_artifacts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    artifact_type text        NOT NULL,
    name          text        NOT NULL,
    source        text        NOT NULL,
    content       jsonb       NOT NULL,
    content_hash  text        NOT NULL,
    usage_count   bigint      NOT NULL DEFAULT 0,
    last_used_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (artifact_type, name)
);
CREATE INDEX knowledge_artifacts_last_used
    ON platform.knowledge_artifacts (artifact_type, (coalesce(last_used_at, updated_at)));

-- ------------------------------------------------------------------ templates and code

-- Embeddings are real[] with the model's name and dimension beside them, and the content hash
-- they were computed from: switching embedders (or editing the text) re-embeds the row instead
-- of mixing vector spaces.
CREATE TABLE platform.templates (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text        NOT NULL UNIQUE,
    kind            text        NOT NULL,
    language        text        NOT NULL,
    body            text        NOT NULL,
    content_hash    text        NOT NULL,
    source_path     text        NOT NULL,
    embedding       real[],
    embedding_model text,
    embedding_dim   integer,
    embedded_hash   text,
    embedded_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT templates_embedding_shape CHECK (
        embedding IS NULL
        OR (embedding_model IS NOT NULL AND cardinality(embedding) = embedding_dim)
    )
);

CREATE TABLE platform.code_chunks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repo            text        NOT NULL,
    path            text        NOT NULL,
    chunk_index     integer     NOT NULL CHECK (chunk_index >= 0),
    language        text        NOT NULL,
    symbol          text,
    start_line      integer     NOT NULL,
    end_line        integer     NOT NULL,
    content         text        NOT NULL,
    content_hash    text        NOT NULL,
    embedding       real[],
    embedding_model text,
    embedding_dim   integer,
    embedded_hash   text,
    embedded_at     timestamptz,
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    seen_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (repo, path, chunk_index),
    CONSTRAINT code_chunks_lines CHECK (start_line >= 1 AND end_line >= start_line),
    CONSTRAINT code_chunks_embedding_shape CHECK (
        embedding IS NULL
        OR (embedding_model IS NOT NULL AND cardinality(embedding) = embedding_dim)
    )
);
CREATE INDEX code_chunks_seen_at ON platform.code_chunks (seen_at);
CREATE INDEX code_chunks_embedding_model ON platform.code_chunks (embedding_model, embedding_dim);

-- ------------------------------------------------------------------ agents and their tasks

CREATE TABLE platform.agents (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                 text        NOT NULL UNIQUE,
    role                 text        NOT NULL,
    capabilities         text[]      NOT NULL DEFAULT '{}',
    max_concurrent       integer     NOT NULL DEFAULT 2 CHECK (max_concurrent > 0),
    status               text        NOT NULL DEFAULT 'idle'
                         CHECK (status IN ('idle', 'busy', 'offline')),
    knowledge            jsonb       NOT NULL DEFAULT '{}',
    knowledge_updated_at timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE platform.agent_tasks (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title               text        NOT NULL,
    required_capability text,
    priority            integer     NOT NULL DEFAULT 0,
    status              text        NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'assigned', 'running', 'completed',
                                          'failed', 'cancelled')),
    agent_id            bigint REFERENCES platform.agents (id) ON DELETE SET NULL,
    source              text        NOT NULL DEFAULT 'manual',
    created_at          timestamptz NOT NULL DEFAULT now(),
    assigned_at         timestamptz,
    completed_at        timestamptz,
    result              jsonb,
    CONSTRAINT agent_tasks_assigned_has_agent CHECK (
        status NOT IN ('assigned', 'running') OR agent_id IS NOT NULL
    )
);
CREATE INDEX agent_tasks_pending ON platform.agent_tasks (priority DESC, created_at, id)
    WHERE status = 'pending';
CREATE INDEX agent_tasks_active ON platform.agent_tasks (agent_id)
    WHERE status IN ('assigned', 'running');
CREATE INDEX agent_tasks_finished ON platform.agent_tasks (completed_at)
    WHERE status IN ('completed', 'failed', 'cancelled');

-- Append-only log of every assignment, so a task assigned twice is visible, not overwritten.
CREATE TABLE platform.task_assignments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id     bigint      NOT NULL REFERENCES platform.agent_tasks (id) ON DELETE CASCADE,
    agent_id    bigint      NOT NULL REFERENCES platform.agents (id) ON DELETE CASCADE,
    assigned_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX task_assignments_task ON platform.task_assignments (task_id);

-- The work plan the planning seed installs; each item becomes an agent task once.
CREATE TABLE platform.work_plan_items (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key                 text    NOT NULL UNIQUE,
    phase               text    NOT NULL,
    title               text    NOT NULL,
    required_capability text,
    priority            integer NOT NULL DEFAULT 0,
    task_id             bigint REFERENCES platform.agent_tasks (id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);

-- ------------------------------------------------------------------ performance metrics

CREATE TABLE platform.metric_samples (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id    bigint           NOT NULL REFERENCES platform.agents (id) ON DELETE CASCADE,
    metric      text             NOT NULL,
    value       double precision NOT NULL,
    recorded_at timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX metric_samples_agent_metric ON platform.metric_samples (agent_id, metric, recorded_at);

-- Per-agent performance, aggregated by refresh_performance_metrics(). WITH NO DATA: the first
-- refresh populates it (a concurrent refresh needs a populated view and the unique index).
CREATE MATERIALIZED VIEW platform.performance_metrics AS
SELECT a.id                                                            AS agent_id,
       a.name                                                          AS agent_name,
       count(t.id)                                                     AS tasks_total,
       count(t.id) FILTER (WHERE t.status = 'completed')               AS tasks_completed,
       count(t.id) FILTER (WHERE t.status = 'failed')                  AS tasks_failed,
       count(t.id) FILTER (WHERE t.status IN ('assigned', 'running'))  AS tasks_active,
       CASE WHEN count(t.id) FILTER (WHERE t.status IN ('completed', 'failed')) = 0 THEN NULL
            ELSE round(count(t.id) FILTER (WHERE t.status = 'completed')::numeric
                       / count(t.id) FILTER (WHERE t.status IN ('completed', 'failed')), 4)
       END                                                             AS success_rate,
       avg(extract(epoch FROM t.completed_at - t.assigned_at))
           FILTER (WHERE t.status = 'completed')                       AS avg_completion_seconds,
       max(t.completed_at)                                             AS last_completed_at,
       (SELECT avg(m.value) FROM platform.metric_samples m
         WHERE m.agent_id = a.id AND m.metric = 'latency_ms')          AS avg_latency_ms
  FROM platform.agents a
  LEFT JOIN platform.agent_tasks t ON t.agent_id = a.id
 GROUP BY a.id, a.name
WITH NO DATA;
CREATE UNIQUE INDEX performance_metrics_agent ON platform.performance_metrics (agent_id);

-- ------------------------------------------------------------------ graph

CREATE TABLE platform.graph_nodes (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    origin              text             NOT NULL DEFAULT 'code',
    kind                text             NOT NULL,
    name                text             NOT NULL,
    pagerank            double precision,
    pagerank_updated_at timestamptz,
    UNIQUE (origin, kind, name)
);

CREATE TABLE platform.graph_edges (
    source_id bigint NOT NULL REFERENCES platform.graph_nodes (id) ON DELETE CASCADE,
    target_id bigint NOT NULL REFERENCES platform.graph_nodes (id) ON DELETE CASCADE,
    kind      text   NOT NULL,
    PRIMARY KEY (source_id, target_id, kind)
);
CREATE INDEX graph_edges_target ON platform.graph_edges (target_id);

-- One row per PageRank run, so an operator sees whether it converged and how long it took.
CREATE TABLE platform.pagerank_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  timestamptz      NOT NULL,
    finished_at timestamptz      NOT NULL,
    nodes       bigint           NOT NULL,
    edges       bigint           NOT NULL,
    iterations  integer          NOT NULL,
    delta       double precision NOT NULL,
    converged   boolean          NOT NULL
);

-- ------------------------------------------------------------------ backups, registry, stats

CREATE TABLE platform.backup_metadata (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text        NOT NULL,
    database    text        NOT NULL,
    path        text        NOT NULL,
    status      text        NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'succeeded', 'failed', 'expired')),
    size_bytes  bigint,
    sha256      text,
    toc_entries integer,
    verified    boolean     NOT NULL DEFAULT false,
    error       text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    expired_at  timestamptz
);
CREATE INDEX backup_metadata_kind ON platform.backup_metadata (kind, database, started_at DESC);

-- Where archive_backup_metadata() moves records of old backups (their files are long gone).
CREATE TABLE platform.backup_archive (
    LIKE platform.backup_metadata,
    archived_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id)
);

CREATE TABLE platform.registry_snapshots (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    taken_at timestamptz NOT NULL DEFAULT now(),
    digest   text        NOT NULL,
    summary  jsonb       NOT NULL
);

CREATE TABLE platform.vector_stats (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collected_at    timestamptz      NOT NULL,
    table_name      text             NOT NULL,
    embedding_model text,
    embedding_dim   integer,
    rows            bigint           NOT NULL,
    stale_rows      bigint           NOT NULL,
    avg_norm        double precision
);

-- ------------------------------------------------------------------ the central database

-- Stands in for the central database every instance syncs its learnings to.
CREATE TABLE central.learned_patterns (
    instance     text             NOT NULL,
    pattern_key  text             NOT NULL,
    category     text             NOT NULL,
    rule         text             NOT NULL,
    language     text             NOT NULL,
    occurrences  bigint           NOT NULL,
    confidence   double precision NOT NULL,
    last_seen_at timestamptz      NOT NULL,
    received_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (instance, pattern_key)
);
