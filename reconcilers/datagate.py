"""The data gate: a Dataset's schema and its Great Expectations contract.

A schema change (a column added or removed, under ``schemaMatch: exact``)
trips the gate as a circuit breaker before any expectation runs. The
expectations run in an ephemeral GX 1.x context, imported only here and only
when a gate runs (importing GX takes seconds). The result carries the GX run
id and the evidence for the audit log.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from controller.api import Dataset
from controller.api.dataset import ColumnType

if TYPE_CHECKING:
    import pandas as pd

_KINDS = {
    ColumnType.INTEGER: "iu",
    ColumnType.FLOAT: "fiu",
    ColumnType.BOOLEAN: "b",
    ColumnType.STRING: "OSU",
    ColumnType.CATEGORY: "OSUiub",
    ColumnType.DATETIME: "MO",
}


@dataclass
class GateResult:
    success: bool
    summary: str
    gx_run_id: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def check_schema(dataset: Dataset, frame: pd.DataFrame) -> dict[str, Any]:
    declared = {c.name: c for c in dataset.spec.columns}
    actual = list(frame.columns)
    missing = [name for name in declared if name not in actual]
    extra = [name for name in actual if name not in declared] if declared else []
    mode = dataset.spec.contract.schemaMatch
    wrong_types = []
    for name, column in declared.items():
        if name in frame.columns:
            series = frame[name]
            if series.dtype.kind not in _KINDS[column.type] and not (
                column.type == ColumnType.STRING and str(series.dtype) in ("string", "str")
            ):
                wrong_types.append({"column": name, "declared": column.type.value, "actual": str(series.dtype)})
            if not column.nullable and bool(series.isna().any()):
                wrong_types.append({"column": name, "declared": "not nullable", "actual": "has missing values"})
    ok = mode == "none" or (not missing and not wrong_types and (mode == "subset" or not extra))
    return {"mode": mode, "missing": missing, "extra": extra, "mismatched": wrong_types, "success": ok}


def _silence_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    for name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run_contract(dataset: Dataset, frame: pd.DataFrame) -> GateResult:
    """Run the schema check, then the expectations; never raises for bad data."""
    schema = check_schema(dataset, frame)
    evidence: dict[str, Any] = {"rows": len(frame), "schema": schema}
    if not schema["success"]:
        parts = []
        if schema["missing"]:
            parts.append(f"missing column(s) {', '.join(schema['missing'])}")
        if schema["extra"]:
            parts.append(f"unexpected column(s) {', '.join(schema['extra'])}")
        for m in schema["mismatched"]:
            parts.append(f"column '{m['column']}' is {m['actual']}, declared {m['declared']}")
        return GateResult(False, "schema changed: " + "; ".join(parts), None, evidence)

    expectations = dataset.spec.contract.expectations
    if not expectations:
        return GateResult(True, "schema matches; no expectations declared", None, evidence)

    _silence_gx()
    import great_expectations as gx
    from great_expectations.expectations.registry import get_expectation_impl

    context = gx.get_context(mode="ephemeral")
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    suite = gx.ExpectationSuite(name=f"{dataset.name}-contract")
    severities = []
    for exp in expectations:
        try:
            cls = get_expectation_impl(exp.type)
            suite.add_expectation(cls(**exp.kwargs))
        except Exception as exc:  # unknown expectation or bad kwargs
            evidence["error"] = f"expectation '{exp.type}' cannot be built: {exc}"
            return GateResult(False, evidence["error"], None, evidence)
        severities.append(exp.severity)
    suite = context.suites.add(suite)
    batch = context.data_sources.add_pandas("modelplane").add_dataframe_asset(dataset.name)
    definition = batch.add_batch_definition_whole_dataframe("all-rows")
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{dataset.name}-validation", data=definition, suite=suite)
    )
    outcome = validation.run(batch_parameters={"dataframe": frame}).to_json_dict()
    results = []
    for severity, item in zip(severities, outcome["results"], strict=True):
        config = item["expectation_config"]
        observed = {
            k: v
            for k, v in (item.get("result") or {}).items()
            if k in ("observed_value", "element_count", "unexpected_count", "unexpected_percent")
        }
        samples = (item.get("result") or {}).get("partial_unexpected_list")
        if samples:  # data values never reach the state store or the audit log in clear
            observed["unexpected_samples"] = [mask(v) for v in samples]
        error = (item.get("exception_info") or {}).get("exception_message")
        results.append(
            {
                "type": config["type"],
                "kwargs": {k: v for k, v in config["kwargs"].items() if k != "batch_id"},
                "severity": severity,
                "success": bool(item["success"]),
                "observed": observed,
                **({"error": error} if error else {}),
            }
        )
    failed = [r for r in results if not r["success"] and r["severity"] == "error"]
    warned = [r for r in results if not r["success"] and r["severity"] == "warning"]
    run_id = outcome["meta"].get("validation_id") or str(outcome["meta"].get("run_id", {}).get("run_name"))
    evidence.update(results=results, statistics=outcome["statistics"])
    summary = (
        f"{len(results) - len(failed) - len(warned)}/{len(results)} expectations met"
        + (f"; failed: {', '.join(_describe(r) for r in failed)}" if failed else "")
        + (f"; warnings: {', '.join(_describe(r) for r in warned)}" if warned else "")
    )
    return GateResult(not failed, summary, run_id, evidence)


def mask(value: Any) -> str:
    """A data value as evidence may keep it: its kind and size, not its content."""
    if value is None:
        return "<null>"
    if isinstance(value, bool):
        return "<boolean>"
    if isinstance(value, int | float):
        return "<number>"
    text = str(value)
    return f"<text, {len(text)} chars>"


def _describe(result: dict[str, Any]) -> str:
    column = result["kwargs"].get("column")
    observed = result["observed"]
    detail = ""
    if "unexpected_count" in observed:
        detail = f" ({observed['unexpected_count']} unexpected of {observed.get('element_count')})"
    elif "observed_value" in observed:
        detail = f" (observed {observed['observed_value']})"
    return f"{result['type']}" + (f"[{column}]" if column else "") + detail
