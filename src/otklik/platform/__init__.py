"""Shared infrastructure: settings, database, errors, events, jobs, text search. Knows no business domain."""
