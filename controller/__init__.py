"""modelplane: a declarative GitOps control plane for machine learning."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("modelplane")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
