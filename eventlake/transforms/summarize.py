"""Count errors completely while keeping only a bounded, deterministic sample of them."""

from __future__ import annotations

import heapq
from collections import Counter

import apache_beam as beam


def _order(error: dict) -> tuple:
    return (error["source"], error.get("offset") or 0, error["field"])


class ErrorSummaryFn(beam.CombineFn):
    """errors -> ``{"count", "by_reason", "samples"}``; samples are the first ``max_samples`` by position."""

    def __init__(self, max_samples: int):
        self._max = max_samples

    def create_accumulator(self):
        return [0, Counter(), []]

    def add_input(self, acc, error):
        acc[0] += 1
        acc[1][error["reason"]] += 1
        # Keep the smallest positions: a max-heap of the kept ones via negated ordering.
        heapq.heappush(acc[2], (_Reverse(_order(error)), error))
        if len(acc[2]) > self._max:
            heapq.heappop(acc[2])
        return acc

    def merge_accumulators(self, accumulators):
        total, reasons, kept = 0, Counter(), []
        for count, by_reason, samples in accumulators:
            total += count
            reasons.update(by_reason)
            for item in samples:
                heapq.heappush(kept, item)
                if len(kept) > self._max:
                    heapq.heappop(kept)
        return [total, reasons, kept]

    def extract_output(self, acc):
        samples = sorted((error for _, error in acc[2]), key=_order)
        return {"count": acc[0], "by_reason": dict(acc[1]), "samples": samples}


class _Reverse:
    """Inverts ordering so that ``heapq`` (a min-heap) drops the largest position first."""

    __slots__ = ("key",)

    def __init__(self, key):
        self.key = key

    def __lt__(self, other):
        return self.key > other.key

    def __eq__(self, other):
        return self.key == other.key
