"""Triggers: where revisions come from (git today; webhooks and the poller later)."""
