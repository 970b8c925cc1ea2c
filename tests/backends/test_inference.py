"""The inference path as a unit: KServe's data plane and a served version of a real model
in-process, without a socket. V1 and V2 answers are the model's own, a malformed V2 body
is a 400 that says what is wrong, a failure inside the model is a 500 that echoes
nothing, and calls that come together are predicted in one batch."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier

from controller.backends.serving.inference import Inference, v2_problem
from controller.backends.serving.modelserver import _served_model_class
from controller.state.artifacts import ArtifactStore

# The served version hands the model arrays in its features' order (and silences this once, at
# load, for the process; pytest restores its own filters for every test).
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")

SERVICE = "breast-cancer-api"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Inference, Any, Any]:
    from kserve import ModelServer

    data = load_breast_cancer(as_frame=True)
    model = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0).fit(data.data, data.target)
    store = ArtifactStore(tmp_path_factory.mktemp("artifacts"))
    version = _served_model_class()(SERVICE, SERVICE, 7, store, store.put_model(model))
    version.load()
    server = ModelServer(http_port=0, enable_grpc=False, workers=1)
    server.register_model(version)
    return Inference(server.dataplane), version, data.data


def v2(rows: Any, **extra: Any) -> bytes:
    tensor = {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": rows.to_numpy().tolist()}
    return json.dumps({"inputs": [tensor], **extra}).encode()


def test_v1_and_v2_answer_what_the_model_answers(served: Any) -> None:
    inference, version, features = served
    rows = features.iloc[::50]
    expected = version.estimator.predict(rows.to_numpy()).tolist()
    one = asyncio.run(inference(SERVICE, "v1", json.dumps({"instances": rows.to_numpy().tolist()}).encode(), JSON))
    two = asyncio.run(inference(SERVICE, "v2", v2(rows, id="call-1"), JSON))
    assert (one.status, json.loads(one.body)) == (200, {"predictions": expected})
    assert two.status == 200
    assert json.loads(two.body) == {
        "id": "call-1",
        "model_name": SERVICE,
        "model_version": "7",
        "outputs": [{"name": "output-0", "shape": [len(expected)], "datatype": "INT64", "data": expected}],
    }


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ([1, 2], "the body must be a JSON object"),
        ({"inputs": []}, "'inputs' must be a list of input tensors"),
        ({"inputs": {"name": "x"}}, "'inputs' must be a list of input tensors"),
        ({"id": 5, "inputs": [{}]}, "'id' must be a string"),
        ({"parameters": [1], "inputs": [{}]}, "'parameters' must be an object"),
        ({"inputs": ["row"]}, "inputs[0] must be an object with name, shape, datatype and data"),
        ({"inputs": [{"shape": [1], "datatype": "FP64", "data": [1]}]}, "inputs[0].name must be a string"),
        ({"inputs": [{"name": "x", "shape": [1, -2], "datatype": "FP64", "data": []}]}, "inputs[0].shape must be"),
        ({"inputs": [{"name": "x", "shape": [1.5], "datatype": "FP64", "data": []}]}, "inputs[0].shape must be"),
        ({"inputs": [{"name": "x", "shape": [True], "datatype": "FP64", "data": []}]}, "inputs[0].shape must be"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "float", "data": [1]}]}, "inputs[0].datatype must be"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64"}]}, "inputs[0].data is missing"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}], "outputs": {}}, "'outputs' must"),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}],
             "outputs": [{"name": "output-0", "parameters": {"binary_data": True}}]},
            "outputs[0] asks for binary data",
        ),
        (
            {"inputs": [{"name": "a", "shape": [1, 30], "datatype": "FP64", "data": [0] * 30}] * 2},
            "send one input tensor holding the rows",
        ),
        (
            {"parameters": {"content_type": "pd"},
             "inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [0]}] * 4097},
            "at most 4096 input tensors",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "BOOL", "data": [[True, "false"]]}]},
            "inputs[0].data must be JSON booleans",
        ),
    ],
)  # fmt: skip
def test_a_malformed_v2_body_is_a_400_saying_what_is_wrong(served: Any, document: Any, problem: str) -> None:
    found = v2_problem(document)
    assert found is not None and found.startswith(problem)
    answer = asyncio.run(served[0](SERVICE, "v2", json.dumps(document).encode(), JSON))
    assert answer.status == 400
    assert json.loads(answer.body)["error"].startswith(f"not a V2 inference request: {problem}")


@pytest.mark.parametrize(
    ("protocol", "body", "status"),
    [
        ("v2", b"{not json", 400),
        ("v1", b"{not json", 400),
        ("v1", b'{"instances": [[1, 2]]}', 400),  # two features, not thirty
        ("v1", b'{"rows": [[1]]}', 400),
    ],
)
def test_bad_bodies_are_4xx(served: Any, protocol: str, body: bytes, status: int) -> None:
    answer = asyncio.run(served[0](SERVICE, protocol, body, JSON))
    assert answer.status == status and json.loads(answer.body)["error"]


def test_an_unknown_model_is_a_404(served: Any) -> None:
    answer = asyncio.run(served[0]("nobody", "v1", b'{"instances": [[1]]}', JSON))
    assert answer.status == 404


def test_a_failure_inside_the_model_is_a_500_that_echoes_nothing(
    served: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    inference, version, features = served

    def broken(rows: Any) -> Any:
        raise RuntimeError("cannot open /srv/secret/weights.bin")

    monkeypatch.setattr(version.batcher, "predict", broken)
    answer = asyncio.run(
        inference(SERVICE, "v1", json.dumps({"instances": features.iloc[:1].to_numpy().tolist()}).encode(), JSON)
    )
    assert answer.status == 500
    assert "/srv/secret" not in answer.body.decode() and "model failed to answer" in answer.body.decode()
    assert "cannot open /srv/secret/weights.bin" in caplog.text  # in the server's log, for its operator


def test_calls_that_come_together_are_predicted_together(served: Any) -> None:
    inference, version, features = served
    bodies = [v2(features.iloc[i : i + 1]) for i in range(0, 400, 50)]
    before = version.batcher.batches

    async def run() -> list[Any]:
        return await asyncio.gather(*(inference(SERVICE, "v2", body, JSON) for body in bodies))

    answers = asyncio.run(run())
    assert version.batcher.batches == before + 1
    expected = version.estimator.predict(features.iloc[0:400:50].to_numpy()).tolist()
    assert [json.loads(a.body)["outputs"][0]["data"][0] for a in answers] == expected


def test_object_rows_are_rows_in_the_models_feature_order(served: Any) -> None:
    """V1 rows may be objects, a value or a list of values per feature (several rows in one
    object), in any key order: they are predicted as the same rows given as lists."""
    inference, version, features = served
    rows = features.iloc[:4]
    expected = version.estimator.predict(rows.to_numpy()).tolist()
    shuffled = list(reversed(rows.columns))
    one_each = [{f: row[f] for f in shuffled} for _, row in rows.iterrows()]
    together = [{f: rows[f].tolist()[:3] for f in shuffled}, {f: [rows[f].tolist()[3]] for f in shuffled}]
    for instances in (one_each, together):
        answer = asyncio.run(inference(SERVICE, "v1", json.dumps({"instances": instances}).encode(), JSON))
        assert (answer.status, json.loads(answer.body)) == (200, {"predictions": expected})


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        ([{"k0": [0]}, {"k1": [0]}], "row 0 names no feature 'k0'"),
        ([{"mean radius": 1.0}], "row 0 lacks the feature(s)"),
        ("ALL", "each object row holds exactly the model's features"),
        ("UNEVEN", "row 0: give every feature one value, or every feature as many values"),
        ("TOO_MANY", "at most 10000 rows a request, not 10001"),
        ("STRINGS", "feature values must be numbers"),
    ],
)
def test_bad_object_rows_are_refused_before_anything_is_built(served: Any, instances: Any, message: str) -> None:
    inference, _, features = served
    names = list(features.columns)
    row = features.iloc[0].to_dict()
    rows = {
        "ALL": [{**row, "extra": 1.0}],
        "UNEVEN": [{**{f: [v] for f, v in row.items()}, names[0]: [1.0, 2.0]}],
        "TOO_MANY": [{f: [v] * 10_001 for f, v in row.items()}],
        "STRINGS": [{**row, names[0]: "large"}],
    }.get(instances if isinstance(instances, str) else "", instances)
    answer = asyncio.run(inference(SERVICE, "v1", json.dumps({"instances": rows}).encode(), JSON))
    assert answer.status == 400
    assert message in json.loads(answer.body)["error"]


def test_a_refusal_by_the_model_names_nothing_of_it(served: Any) -> None:
    inference, _, _ = served
    answer = asyncio.run(inference(SERVICE, "v1", json.dumps({"instances": [[None] * 30]}).encode(), JSON))
    assert (answer.status, json.loads(answer.body)) == (
        400,
        {"error": "the model cannot predict these inputs: they hold missing (null, NaN) or infinite values"},
    )


def test_bool_data_nested_deeper_than_python_recurses_is_a_400(served: Any) -> None:
    deep = "[" * 1000 + "true" + "]" * 1000  # orjson reads up to 1024 levels; Python recursion stops at 1000
    body = ('{"inputs": [{"name": "x", "shape": [1], "datatype": "BOOL", "data": ' + deep + "}]}").encode()
    answer = asyncio.run(served[0](SERVICE, "v2", body, JSON))
    assert answer.status == 400
