"""Tenancy: workspaces, their members and roles, API keys, and the audit trail."""
