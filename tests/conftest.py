"""Shared fixtures: the team's real sample data, and small helpers to build inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventlake.formats.lines import split_lines

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RETAIL = SHARED_DATA / "google-retail"


@pytest.fixture
def retail_data() -> Path:
    if not RETAIL.is_dir():
        pytest.skip(f"the shared sample data is not at {RETAIL}")
    return RETAIL


def block_of(text: bytes, source: str = "events.json"):
    block, _ = split_lines(source, text, 0, 1)
    return block


def local_pipeline():
    """A TestPipeline on the local FnApiRunner (Beam's default would try to download Prism)."""
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.testing.test_pipeline import TestPipeline

    return TestPipeline(runner=FnApiRunner())
