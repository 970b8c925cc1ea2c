"""Typed resource models for ``modelplane.io/v1alpha1``.

The loader (``controller.loading``) turns YAML into these models; schemas in
``schemas/`` and the spec reference in ``docs/`` are generated from them.

The models are imported on first use (``from controller.api import Model``), not
with the package: importing ``controller.api.findings`` or ``controller.api.status``
(the formatters, the state store, ``modelplane --version``) does not build them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: this package is imported by every command
if TYPE_CHECKING:
    from controller.api.chaos import ChaosExperiment
    from controller.api.common import API_VERSION, Reference, Resource
    from controller.api.dataset import Dataset
    from controller.api.inference_service import InferenceService
    from controller.api.model import Model
    from controller.api.policy_exception import PolicyException

    KINDS: Mapping[str, type[Resource]]
    API_VERSIONS: tuple[str, ...]

_MODULES = {
    "API_VERSION": "common",
    "Reference": "common",
    "Resource": "common",
    "Dataset": "dataset",
    "Model": "model",
    "InferenceService": "inference_service",
    "ChaosExperiment": "chaos",
    "PolicyException": "policy_exception",
}
_KIND_ORDER = ("Dataset", "Model", "InferenceService", "ChaosExperiment", "PolicyException")


class _Kinds(Mapping[str, type]):
    """The model of each kind by name, each built when it is first asked for: a command
    that reads one Model does not build the other kinds' validators."""

    def __init__(self) -> None:
        self._built: dict[str, type] = {}

    def __getitem__(self, kind: str) -> type:
        model = self._built.get(kind)
        if model is None:
            if kind not in _KIND_ORDER:
                raise KeyError(kind)
            built = __getattr__(kind)
            assert isinstance(built, type)
            model = self._built[kind] = built
        return model

    def __contains__(self, kind: object) -> bool:
        return kind in _KIND_ORDER

    def __iter__(self) -> Iterator[str]:
        return iter(_KIND_ORDER)

    def __len__(self) -> int:
        return len(_KIND_ORDER)

    def __repr__(self) -> str:
        return f"KINDS({', '.join(_KIND_ORDER)})"


def __getattr__(name: str) -> object:
    if name == "KINDS":
        value: object = _Kinds()
    elif name == "API_VERSIONS":
        value = (__getattr__("API_VERSION"),)
    elif name in _MODULES:
        # __import__ rather than importlib.import_module: the same import, but -X importtime sees it.
        value = getattr(__import__(f"{__name__}.{_MODULES[name]}", fromlist=[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


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
