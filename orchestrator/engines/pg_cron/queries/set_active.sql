SELECT orchestrator_cron.alter_job(%s::bigint, NULL, NULL, NULL, %s::boolean)
