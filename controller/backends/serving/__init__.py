"""Serving targets. Today: a KServe ModelServer process on this machine
(:mod:`controller.backends.serving.process` starts and stops it,
:mod:`controller.backends.serving.modelserver` is what runs in it). Nothing in the
reconcile loop deploys through it yet: ``InferenceService`` is validated and
policy-checked, not reconciled."""
