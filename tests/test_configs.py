"""The ready configs in configs/ load, and each names only settings its job knows."""

from pathlib import Path

import pytest

from eventlake.config import SECTIONS, ConfigError, ExportConfig, ImportConfig, PurgeConfig, RejoinConfig, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name, kind", [("import", ImportConfig), ("rejoin", RejoinConfig), ("purge", PurgeConfig),
                                        ("export", ExportConfig)])
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


@pytest.mark.parametrize(("name", "records", "stored", "errors"), [
    ("personalize", 500, 500, 0), ("personalize-events", 10, 9, 1), ("opensearch", 5, 4, 1), ("pairec", 10, 8, 2),
    ("ga4", 11, 7, 1), ("pairec-callback", 7, 4, 3)])
def test_each_format_config_imports_its_bundled_example(tmp_path, name, records, stored, errors):
    """The ready config of each source format runs on its bundled sample (store redirected)."""
    import json

    from eventlake.cli import main

    summary = tmp_path / "summary.json"
    code = main(["import", "--config", str(CONFIGS / f"{name}.yaml"), "--store", str(tmp_path / "store"),
                 "--summary", str(summary)])
    assert code == 0
    s = json.loads(summary.read_text())
    assert (s["records"], s["stored"], s["errors"]) == (records, stored, errors)
    assert s["catalog_errors"] == 0 and s["joined"] > 0


def test_config_construction_refuses_what_the_flags_refuse():
    with pytest.raises(ConfigError, match="scope: 'bogus'"):
        RejoinConfig(store="s", catalog="c", scope="bogus")
    with pytest.raises(ConfigError, match="max_error_ratio: expected float, got str"):
        ImportConfig(events=["a"], catalog="c", store="s", max_error_ratio="0.5")
    with pytest.raises(ConfigError, match="catalog_field_map: GENRE maps to 'genre'"):
        ImportConfig(events=["a"], catalog="c", store="s", catalog_field_map={"GENRE": "genre"})
    assert ImportConfig(events=["a"], catalog="c", store="s", max_error_ratio=1).max_error_ratio == 1.0


def test_the_export_config_exports_the_demo_store(tmp_path):
    """import.yaml then export.yaml, as the config's comment says (stores redirected)."""
    import json

    from eventlake.cli import main

    assert main(["import", "--config", str(CONFIGS / "import.yaml"), "--store", str(tmp_path / "store")]) == 0
    code = main(["export", "--config", str(CONFIGS / "export.yaml"), "--store", str(tmp_path / "store"),
                 "--output", str(tmp_path / "out"), "--summary", str(tmp_path / "s.json")])
    assert code == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["events_read"] == 3 and s["format"] == "personalize"
    assert (tmp_path / "out" / "readiness.json").exists() and (tmp_path / "out" / "items.csv").exists()


def test_the_features_config_imports_its_bundled_feature_log(tmp_path):
    import json

    from eventlake.cli import main

    summary = tmp_path / "summary.json"
    code = main(["features", "import", "--config", str(CONFIGS / "pairec-features.yaml"), "--store",
                 str(tmp_path / "store"), "--summary", str(summary)])
    assert code == 0
    s = json.loads(summary.read_text())
    assert (s["records"], s["stored"], s["errors"]) == (6, 5, 1) and s["by_module"] == {"item": 3, "user": 2}
    assert s["features_store"] == str(tmp_path / "store" / "_features")


def test_the_samples_config_builds_samples_from_the_pairec_examples(tmp_path):
    """The three PAI-Rec configs in the order their comments give, into one store, then samples."""
    import json

    import duckdb

    from eventlake.cli import main
    from eventlake.config import SamplesConfig

    store = str(tmp_path / "store")
    assert main(["import", "--config", str(CONFIGS / "pairec.yaml"), "--store", store]) == 0
    assert main(["import", "--config", str(CONFIGS / "pairec-callback.yaml"), "--store", store]) == 0
    assert main(["features", "import", "--config", str(CONFIGS / "pairec-features.yaml"), "--store", store]) == 0
    config = load_config(str(CONFIGS / "pairec-samples.yaml"), {}, SamplesConfig)
    assert config.labels == {"click": "detail-page-view", "cart": "add-to-cart", "buy": "purchase-complete"}
    summary = tmp_path / "s.json"
    assert main(["samples", "--config", str(CONFIGS / "pairec-samples.yaml"), "--store", store,
                 "--output", str(tmp_path / "samples"), "--summary", str(summary)]) == 0
    s = json.loads(summary.read_text())
    assert s["samples"] == 4 and s["positives"] == {"click": 2, "cart": 1, "buy": 1}
    rows = duckdb.sql(f"SELECT request_id, item_id, click, buy, buy_value, user__age, item__price FROM "
                      f"read_parquet('{tmp_path}/samples/*.parquet') ORDER BY ALL").fetchall()
    assert rows[0] == ("req-1", "GGCOGOAC101259", 1, 1, 29.99, 25, 16.0)
