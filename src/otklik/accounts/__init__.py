"""Workspaces, users and teams, authentication (sessions with CSRF, API tokens), roles and the audit log."""
