"""Error summaries: complete counts, the first samples by position, however the errors are split."""

import random

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from eventlake.transforms.summarize import ErrorSummaryFn, SummarizeErrors, merge_summaries
from tests.conftest import local_pipeline


def _errors(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [{"source": f"f{rng.randrange(3)}.jsonl", "offset": rng.randrange(10_000), "field": "eventType",
             "reason": rng.choice(["A", "B", "C"])} for _ in range(n)]


def _summary_of(errors: list[dict], max_samples: int) -> dict:
    fn = ErrorSummaryFn(max_samples)
    acc = fn.create_accumulator()
    for error in errors:
        acc = fn.add_input(acc, error)
    return fn.extract_output(acc)


def test_merged_summaries_equal_the_summary_of_all_errors():
    first, second = _errors(300, 1), _errors(200, 2)
    merged = merge_summaries([_summary_of(first, 7), _summary_of(second, 7), _summary_of([], 7)], 7)
    assert merged == _summary_of(first + second, 7)
    assert merged["count"] == 500 and sum(merged["by_reason"].values()) == 500 and len(merged["samples"]) == 7


def test_summarize_errors_over_several_inputs():
    first, second = _errors(120, 3), _errors(80, 4)
    expected = _summary_of(first + second, 5)
    with local_pipeline() as p:
        inputs = (p | "First" >> beam.Create(first), p | "Second" >> beam.Create(second), p | "None" >> beam.Create([]))
        assert_that(inputs | SummarizeErrors(5), equal_to([expected]))
