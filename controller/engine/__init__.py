"""The engine: load -> validate -> policy (-> plan -> execute, in later steps)."""
