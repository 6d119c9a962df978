SELECT cron.alter_job(%s::bigint, active => %s::boolean)
