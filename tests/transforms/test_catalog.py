import json

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.testing.util import assert_that, equal_to

from eventlake.errors import ERRORS
from eventlake.io.files import source_file, split_ranges
from eventlake.transforms import product_index
from eventlake.transforms.catalog import ReadCatalog, read_catalog
from eventlake.transforms.product_index import ProductIndex
from tests.conftest import local_pipeline

CATALOG_IDS = ["a", "ab", "abc", "é-1", "P00000001", "", "z" * 40]
TRICKY = ["a", "a\x00", "ab", "abcd", "abc", "é-1", "é", "P00000001", "P0000000", "P000000011", "", None,
          "z" * 40, "z" * 41, "never"]


def test_product_index_finds_exactly_what_index_in_finds():
    catalog = pa.array(CATALOG_IDS)
    ids = pa.array(TRICKY)
    expected = pc.fill_null(pc.index_in(ids, value_set=catalog), -1).to_numpy()
    assert ProductIndex(catalog).positions(ids).tolist() == expected.tolist()


def test_product_index_on_sliced_arrays_and_an_empty_catalog():
    ids = pa.array(["x"] + TRICKY).slice(1)
    catalog = pa.chunked_array([pa.array(["q"] + CATALOG_IDS).slice(1)])
    expected = pc.fill_null(pc.index_in(ids, value_set=catalog.combine_chunks()), -1).to_numpy()
    assert np.array_equal(ProductIndex(catalog).positions(ids), expected)
    assert (ProductIndex(pa.array([], pa.string())).positions(ids) == -1).all()


def test_product_index_tells_apart_ids_that_share_a_hash(monkeypatch):
    monkeypatch.setattr(product_index, "_hash", lambda padded: np.zeros(len(padded), dtype=np.uint64))
    catalog = pa.array(CATALOG_IDS + ["ab"])  # a repeated id: its first row is the one found
    ids = pa.array(TRICKY)
    expected = pc.fill_null(pc.index_in(ids, value_set=catalog), -1).to_numpy()
    assert ProductIndex(catalog).positions(ids).tolist() == expected.tolist()


def _products(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_catalog_files_merge_into_one_arrow_file_and_later_files_win(tmp_path):
    first = _products(tmp_path / "a.json", [
        {"id": "p1", "title": "Old pen", "priceInfo": {"price": 1.0, "currencyCode": "USD"}},
        {"id": "p2", "title": "Cup", "availability": "INVALID_VALUE"},
        {"id": "p3", "title": "Ink"},
    ])
    second = _products(tmp_path / "b.json", [{"id": "p1", "title": "New pen"}, {"id": "p4", "title": "Pad"}])
    temp = tmp_path / "temp"
    with local_pipeline() as p:
        catalog = p | ReadCatalog([first, second], ("title",), str(temp))
        products = catalog["products"] | "Read" >> beam.Map(lambda f: (f.products, sorted(read_catalog(f.path).to_pylist(), key=str)))
        assert_that(products, equal_to([(3, [{"id": "p1", "title": "New pen"}, {"id": "p3", "title": "Ink"},
                                               {"id": "p4", "title": "Pad"}])]))
        reasons = catalog[ERRORS] | "Reasons" >> beam.Map(lambda e: (e["line"], e["field"]))
        assert_that(reasons, equal_to([(2, "availability")]), label="CatalogErrors")
    assert [p.name for p in temp.iterdir()] == ["catalog.arrow"]  # the per-file parts are gone



def test_a_catalog_cut_into_ranges_reads_as_whole(tmp_path):
    lines = [json.dumps({"id": f"p{i % 40}", "title": f"v{i}"}) for i in range(120)]
    lines[7] = ""  # blank lines still count for line numbers
    lines[50] = json.dumps({"id": "bad", "availability": "INVALID_VALUE"})
    lines[101] = "{broken"
    path = tmp_path / "products.jsonl"
    path.write_text("\n".join(lines) + "\n")
    latest = {}
    for line in lines:
        row = json.loads(line) if line.startswith('{"id": "p') else None
        if row:
            latest[row["id"]] = row["title"]
    assert len(split_ranges([source_file(str(path))], 300)) > 10
    for split_bytes in (1 << 20, 300):
        with local_pipeline() as p:
            catalog = p | ReadCatalog([str(path)], ("title",), str(tmp_path / f"temp-{split_bytes}"), split_bytes)
            products = catalog["products"] | beam.FlatMap(lambda f: [(r["id"], r["title"]) for r in read_catalog(f.path).to_pylist()])
            assert_that(products, equal_to(list(latest.items())))
            errors = catalog[ERRORS] | "Lines" >> beam.Map(lambda e: (e["line"], e["field"]))
            assert_that(errors, equal_to([(51, "availability"), (102, "")]), label="CatalogErrors")
