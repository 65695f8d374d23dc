"""The ready configs in configs/ load, and each names only settings its job knows."""

from pathlib import Path

import pytest

from eventlake.config import SECTIONS, ConfigError, ImportConfig, PurgeConfig, RejoinConfig, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name, kind", [("import", ImportConfig), ("rejoin", RejoinConfig), ("purge", PurgeConfig)])
def test_each_ready_config_loads(name, kind):
    config = load_config(str(CONFIGS / f"{name}.yaml"), {}, kind)
    assert isinstance(config, kind) and config.store == "out/store"
    assert SECTIONS[kind] == name


def test_a_file_with_several_sections_gives_each_job_its_own(tmp_path):
    path = tmp_path / "jobs.yaml"
    path.write_text("import:\n  events: [a.json]\n  catalog: c.json\n  store: s\npurge:\n  store: s\n  filter: x\n")
    assert load_config(str(path), {}, PurgeConfig).filter == "x"
    assert load_config(str(path), {}, ImportConfig).events == ["a.json"]
    with pytest.raises(ConfigError, match="store"):
        load_config(str(path), {}, RejoinConfig)  # no rejoin section: nothing set, and store is required


def test_a_bad_scope_is_named():
    with pytest.raises(ConfigError, match="scope: 'some' is not one of all, joined, unjoined"):
        load_config(None, {"store": "s", "catalog": "c", "scope": "some"}, RejoinConfig)
