"""Import, rejoin, purge and history with every path on gs:// or s3://, against real local servers.

delta-rs cannot read the emulators, so the table is checked with ``deltalake`` on a local copy.
"""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from eventlake.cli import main
from eventlake.io.files import read_all, write_bytes
from tests.pipelines.conftest import assert_counts_add_up, stored_rows


def upload(local, remote: str) -> None:
    write_bytes(remote, local.read_bytes())


def download_tree(remote: str, local) -> list[str]:
    """Copy every object under ``remote`` to ``local``; their relative paths."""
    names = []
    for meta in FileSystems.match([f"{remote}/**"])[0].metadata_list:
        name = meta.path[len(remote) + 1 :]
        target = local / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read_all(meta.path))
        names.append(name)
    return names


def test_every_job_runs_on_object_storage(generated, bucket, tmp_path, capsys):
    upload(generated / "events" / "a.jsonl", f"{bucket}/in/a.jsonl")
    upload(generated / "events" / "b.json.gz", f"{bucket}/in/b.json.gz")
    upload(generated / "catalog.json", f"{bucket}/catalog/products.json")
    (tmp_path / "new.json").write_text(json.dumps({"id": "unknown", "title": "Found"}) + "\n")
    upload(tmp_path / "new.json", f"{bucket}/catalog/new.json")
    store = f"{bucket}/store"

    assert main(["import", "--events", f"{bucket}/in/*.json*", "--catalog", f"{bucket}/catalog/products.json",
                 "--store", store, "--summary", f"{bucket}/out/import.json"]) == 0
    imported = json.loads(read_all(f"{bucket}/out/import.json"))
    assert (imported["records"], imported["stored"], imported["unjoined"], imported["errors"]) == (1200, 1176, 120, 24)
    assert_counts_add_up(imported)
    assert read_all(f"{store}/_errors/{imported['run_id']}/errors.jsonl").count(b"\n") == 24

    assert main(["rejoin", "--store", store, "--catalog", f"{bucket}/catalog/new.json", "--scope", "unjoined",
                 "--summary", str(tmp_path / "rejoin.json")]) == 0
    assert json.loads((tmp_path / "rejoin.json").read_text())["newly_joined"] == 120

    assert main(["purge", "--store", store, "--filter", 'visitorId = "v5"', "--force",
                 "--summary", str(tmp_path / "purge.json")]) == 0
    purged = json.loads((tmp_path / "purge.json").read_text())["purged"]
    assert purged > 0

    capsys.readouterr()
    assert main(["history", "--store", store, "--json"]) == 0
    jobs = [json.loads(line)["job"] for line in capsys.readouterr().out.splitlines()]
    assert jobs == ["import", "rejoin", "purge"]

    local = tmp_path / "copy"
    names = download_tree(store, local)
    assert not any(n.startswith("_tmp/") for n in names)  # the runs' scratch files are gone
    rows = stored_rows(local)
    assert len(rows) == 1176 - purged and all(r["joined"] for r in rows)
    assert not any(r["visitor_id"] == "v5" for r in rows)
    on_disk = [r for n in names if n.endswith(".parquet") for r in pq.read_table(os.path.join(local, n)).to_pylist()]
    assert len(on_disk) == len(rows)  # superseded objects were deleted: no purged event is left anywhere


def test_personalize_files_split_in_ranges_import_from_object_storage(bucket, tmp_path):
    """A CSV read in byte ranges that start mid-file (the header and the quote count read from
    the object's start) and an items catalog, both on gs:// or s3://."""
    from eventlake.config import load_config
    from eventlake.pipelines.import_events import plan_import, run_import
    from tests.conftest import write_interactions

    starts = write_interactions(tmp_path / "i.csv", 4000, item=lambda i: "" if i % 400 == 7 else f"{i % 30}",
                                note=lambda i: f'"a, quoted\nnote {i}"' if i % 9 == 0 else "plain")
    bad_lines = [starts[i] for i in range(4000) if i % 400 == 7]
    (tmp_path / "items.csv").write_text("ITEM_ID,GENRE\n" + "".join(f"{i},G{i % 3}|X\n" for i in range(30)))
    upload(tmp_path / "i.csv", f"{bucket}/p/interactions.csv")
    upload(tmp_path / "items.csv", f"{bucket}/p/items.csv")
    config = load_config(None, {"format": "auto", "events": [f"{bucket}/p/interactions.csv"],
                                "catalog_format": "auto", "catalog": f"{bucket}/p/items.csv",
                                "catalog_field_map": {"GENRE": "categories"}, "store": f"{bucket}/pstore",
                                "split_bytes": 1 << 16})
    assert len(plan_import(config).ranges) >= 2
    s = run_import(config)
    assert (s.records, s.errors, s.stored, s.joined) == (4000, len(bad_lines), 4000 - len(bad_lines),
                                                         4000 - len(bad_lines))
    samples = [json.loads(x)["details"][0] for x in read_all(f"{s.errors_path}/errors.jsonl").splitlines()]
    assert sorted(d["line"] for d in samples) == bad_lines
    local = tmp_path / "copy"
    download_tree(f"{bucket}/pstore", local)
    stored = stored_rows(local)
    assert {r["product_details"][0]["product"]["categories"][1] for r in stored} == {"X"}
