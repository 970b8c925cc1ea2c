"""One planner per kind, pure: ``(desired, observed, plan so far, retry) -> more actions and notes``.

Composed by :func:`controller.engine.plan.plan` in dependency order (a Model's
planner sees what the Dataset planner decided). Planners decide from the effects
ledger and the desired digests; they never read the store themselves.
"""
