"""Adaptive micro-batching as a unit, on the breast-cancer data and a real estimator: the
calls of one turn of the event loop are predicted together and each gets its own rows'
answers; a bad call fails alone; a large call and a lone call are not held back."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier

from controller.backends.serving.batching import MicroBatcher


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, GradientBoostingClassifier]:
    features, target = load_breast_cancer(return_X_y=True)
    return features, GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0).fit(features, target)


class Counting:
    """The estimator's predict, counting the rows of each call it gets."""

    def __init__(self, predict: Any) -> None:
        self.predict = predict
        self.sizes: list[int] = []

    def __call__(self, rows: np.ndarray) -> Any:
        self.sizes.append(len(rows))
        return self.predict(rows)


def test_calls_arriving_together_are_predicted_in_one_batch_with_their_own_answers(data: Any) -> None:
    features, model = data
    counting = Counting(model.predict)
    batcher = MicroBatcher(counting)
    calls = [features[i : i + n] for i, n in ((0, 1), (50, 3), (200, 1), (400, 5))]

    async def run() -> list[Any]:
        return await asyncio.gather(*(batcher(rows) for rows in calls))

    answers = asyncio.run(run())
    assert counting.sizes == [10]  # one prediction for the four calls
    for rows, answer in zip(calls, answers, strict=True):
        assert answer.tolist() == model.predict(rows).tolist()
    assert (batcher.calls, batcher.batches) == (4, 1)


def test_a_lone_call_is_predicted_at_once(data: Any) -> None:
    features, model = data
    counting = Counting(model.predict)
    batcher = MicroBatcher(counting)

    async def run() -> list[Any]:
        return [await batcher(features[i : i + 1]) for i in range(3)]  # one after the other

    assert [a.tolist() for a in asyncio.run(run())] == [model.predict(features[i : i + 1]).tolist() for i in range(3)]
    assert counting.sizes == [1, 1, 1]


def test_a_call_the_model_refuses_fails_alone(data: Any) -> None:
    features, model = data
    bad = features[:2].copy()
    bad[1, 3] = np.nan  # scikit-learn's GradientBoosting refuses NaN
    batcher = MicroBatcher(model.predict)

    async def run() -> Any:
        return await asyncio.gather(
            batcher(features[5:6]), batcher(bad), batcher(features[9:11]), return_exceptions=True
        )

    first, refused, last = asyncio.run(run())
    assert isinstance(refused, ValueError) and "NaN" in str(refused)
    assert first.tolist() == model.predict(features[5:6]).tolist()
    assert last.tolist() == model.predict(features[9:11]).tolist()


def test_batches_are_bounded_and_a_large_call_goes_alone(data: Any) -> None:
    features, model = data
    counting = Counting(model.predict)
    batcher = MicroBatcher(counting, max_rows=8)

    async def run() -> list[Any]:
        calls = [batcher(features[i * 3 : i * 3 + 3]) for i in range(5)]  # 15 rows in 3-row calls
        return await asyncio.gather(*calls, batcher(features[100:120]))

    answers = asyncio.run(run())
    assert counting.sizes == [20, 6, 6, 3]  # the large call at once; the rest in batches of at most 8 rows
    assert np.concatenate(answers[:5]).tolist() == model.predict(features[:15]).tolist()


def test_a_call_that_gave_up_is_not_predicted(data: Any) -> None:
    features, model = data
    counting = Counting(model.predict)
    batcher = MicroBatcher(counting)

    async def run() -> Any:
        gone = asyncio.ensure_future(batcher(features[:4]))
        kept = asyncio.ensure_future(batcher(features[4:5]))
        await asyncio.sleep(0)  # both are waiting for the batch
        gone.cancel()
        return await kept

    assert asyncio.run(run()).tolist() == model.predict(features[4:5]).tolist()
    assert counting.sizes == [1]
