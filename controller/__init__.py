"""modelplane: a declarative GitOps control plane for machine learning."""

__version__ = "0.1.0"
