"""Reconcilers: one module per step of the loop (data gate, train, metric gate,
promote, deploy, chaos, model card).

Each step splits a pure decision, ``plan(desired, observed) -> actions``, from an
idempotent effect, ``apply(action, ctx) -> outcome`` (DESIGN.md section 4). The
engine calls them; they never parse HTTP or read CLI flags.
"""
