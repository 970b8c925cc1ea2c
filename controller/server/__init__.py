"""The controller's one HTTP server: a Starlette app on uvicorn.

Called by the CLI (``modelplane policy serve``, through :mod:`controller.server.serve`)
and by tests. :mod:`controller.server.app` builds the app from groups of routes, one
module per API (:mod:`controller.server.data_api` for OPA's Data API; webhooks,
the status API and ``/metrics`` will be more), behind the bearer tokens of
:mod:`controller.server.auth`; :mod:`controller.server.guard` decides whether a server
may start as asked (tokens, TLS, the address), and :mod:`controller.server.run` binds
and runs it. Nothing below the CLI imports this package.
"""
