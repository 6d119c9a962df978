-- Undo 0002_platform_schema.sql: the platform's and the central stand-in's data go with it.
DROP SCHEMA IF EXISTS central CASCADE;
DROP SCHEMA IF EXISTS platform CASCADE;
