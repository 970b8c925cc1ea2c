"""Typed resource models for ``modelplane.io/v1alpha1``.

The loader (``controller.loading``) turns YAML into these models; schemas in
``schemas/`` and the spec reference in ``docs/`` are generated from them.
"""

from controller.api.chaos import ChaosExperiment
from controller.api.common import API_VERSION, Reference, Resource
from controller.api.dataset import Dataset
from controller.api.inference_service import InferenceService
from controller.api.model import Model
from controller.api.policy_exception import PolicyException

KINDS: dict[str, type[Resource]] = {
    cls.__name__: cls for cls in (Dataset, Model, InferenceService, ChaosExperiment, PolicyException)
}
API_VERSIONS = (API_VERSION,)

__all__ = [
    "API_VERSION",
    "API_VERSIONS",
    "KINDS",
    "ChaosExperiment",
    "Dataset",
    "InferenceService",
    "Model",
    "PolicyException",
    "Reference",
    "Resource",
]
