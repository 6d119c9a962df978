-- Undo 0003_platform_functions.sql.
DROP FUNCTION IF EXISTS platform.archive_backup_metadata(interval);
DROP FUNCTION IF EXISTS platform.cleanup_obsolete_code_chunks(interval);
DROP FUNCTION IF EXISTS platform.cleanup_unused_artifacts(interval);
DROP FUNCTION IF EXISTS platform.cleanup_old_jobs(interval);
DROP FUNCTION IF EXISTS platform.recalculate_all_pagerank(double precision, integer, double precision);
DROP FUNCTION IF EXISTS platform.collect_vector_stats(interval);
DROP FUNCTION IF EXISTS platform.refresh_performance_metrics();
DROP FUNCTION IF EXISTS platform.assign_pending_tasks(integer);
DROP FUNCTION IF EXISTS platform.update_agent_knowledge(integer);
DROP FUNCTION IF EXISTS platform.sync_learning_to_centralcloud(text);
DROP FUNCTION IF EXISTS platform.learn_patterns_from_analysis(integer);
