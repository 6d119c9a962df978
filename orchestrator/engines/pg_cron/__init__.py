"""The pg_cron engine: capabilities, bulk writes to ``cron.job``, live reads, run-history import
and the launcher heartbeat. The hall reaches it only through ``Backend``."""
