# PostgreSQL 15 with pg_cron 1.4 from Debian's packages, as `make services` runs it.
FROM postgres:15-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15-cron \
 && rm -rf /var/lib/apt/lists/*
COPY docker/postgres-init.sh /docker-entrypoint-initdb.d/10-orchestrator.sh
# .in: the entrypoint runs *.sql itself; postgres-init.sh feeds this one with its variables
COPY scripts/jobs_role.sql /docker-entrypoint-initdb.d/jobs_role.sql.in
