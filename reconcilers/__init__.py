"""Reconcilers: one module per step of the loop: the data gate (``datagate``),
training (``train``), the metric gate (``metricgate``), model cards
(``modelcard``) and what a served model runs (``deploy``), with ``data`` and
``metrics`` shared by them.

They decide and compute; they do not touch the state store, parse HTTP or read
CLI flags. The pure plan lives in ``controller.engine.plan``; the idempotent
effects (recording results under each action's key) in ``controller.engine.steps``.
"""
