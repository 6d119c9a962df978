SELECT orchestrator_cron.unschedule(t.jobid) FROM unnest(%s::bigint[]) AS t(jobid)
