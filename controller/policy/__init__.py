"""Policy as code: Rego engines, evaluation of resources, waivers, tests, decision log.

Called by the CLI (``validate``, ``policy test``, ``policy serve``, ``audit``) and,
later, by the engine. Depends only on ``controller.loading`` and ``controller.api``.
"""
