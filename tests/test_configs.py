"""The ready configs in configs/ load, and each names only settings its job knows."""

from pathlib import Path

import pytest

from eventlake.config import SECTIONS, ConfigError, ImportConfig, PurgeConfig, RejoinConfig, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name, kind", [("import", ImportConfig), ("rejoin", RejoinConfig), ("purge", PurgeConfig)])
def test_each_ready_config_loads(name, kind):
    config = load_config(str(CONFIGS / f"{name}.yaml"), {}, kind)
    assert isinstance(config, kind) and config.store == str(CONFIGS.parent / "out" / "store")
    assert SECTIONS[kind] == name
    inputs = getattr(config, "events", []) + [getattr(config, "catalog", "")]
    assert all(Path(p).is_file() for p in inputs if p), inputs  # the bundled examples, from any directory


def test_relative_paths_in_a_file_follow_the_file_and_flags_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "jobs.yaml"
    path.write_text("import:\n  events: [data/*.json, /abs/e.json, 'gs://b/e.json']\n  catalog: ../c.json\n"
                    "  store: s\n  summary: out/s.json\n")
    monkeypatch.chdir("/")
    config = load_config(str(path), {}, ImportConfig)
    assert config.events == [str(tmp_path / "conf" / "data" / "*.json"), "/abs/e.json", "gs://b/e.json"]
    assert config.catalog == str(tmp_path / "c.json") and config.store == str(tmp_path / "conf" / "s")
    assert config.summary == str(tmp_path / "conf" / "out" / "s.json")
    assert load_config(str(path), {"store": "flag-store"}, ImportConfig).store == "flag-store"


def test_a_file_with_several_sections_gives_each_job_its_own(tmp_path):
    path = tmp_path / "jobs.yaml"
    path.write_text("import:\n  events: [a.json]\n  catalog: c.json\n  store: s\npurge:\n  store: s\n  filter: x\n")
    assert load_config(str(path), {}, PurgeConfig).filter == "x"
    assert load_config(str(path), {}, ImportConfig).events == [str(tmp_path / "a.json")]
    with pytest.raises(ConfigError, match="store"):
        load_config(str(path), {}, RejoinConfig)  # no rejoin section: nothing set, and store is required


def test_a_bad_scope_is_named():
    with pytest.raises(ConfigError, match="scope: 'some' is not one of all, joined, unjoined"):
        load_config(None, {"store": "s", "catalog": "c", "scope": "some"}, RejoinConfig)
