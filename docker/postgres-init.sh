#!/usr/bin/env bash
# Same role, grants and extension as scripts/services.py gives the embedded cluster.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v role="$APP_DB_USER" -v password="$APP_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" PASSWORD :'password';
GRANT pg_read_all_settings TO :"role";
-- the pg_cron heartbeat looks for the "pg_cron launcher" backend in pg_stat_activity
GRANT pg_read_all_stats TO :"role";
ALTER DATABASE :"DBNAME" OWNER TO :"role";
CREATE EXTENSION IF NOT EXISTS pg_cron;
GRANT USAGE ON SCHEMA cron TO :"role";
GRANT EXECUTE ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean) TO :"role";
GRANT EXECUTE ON FUNCTION cron.alter_job(bigint, text, text, text, text, boolean) TO :"role";
SQL
# The jobs role SQL jobs run as, and the functions that schedule pg_cron jobs as it (README,
# "Security"). The password travels through psql's standard input, never argv.
{
  printf '\\set app_role %s\n\\set jobs_role %s\n' "$APP_DB_USER" "$JOBS_DB_USER"
  printf '\\set jobs_password %s\n' "$JOBS_DB_PASSWORD"
  cat /docker-entrypoint-initdb.d/jobs_role.sql.in
} | psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB"
