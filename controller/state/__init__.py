"""State: the SQLite store (runs, registry, approvals, statuses), the hash-chained
audit log, the content-addressed artifact store, and the apply lock."""
