"""Export output files: written aside while the job runs, published whole when it succeeds.

A run writes its files under a staging folder beside the output (``<output>.eventlake-tmp``),
marked alive like a store run, so a killed run's files are found and removed by the next
export to the same place and never sit inside the output. On success the staged tree is
published: on local disk by renaming the staging folder to the output folder (atomic: readers
see all files or none); on object storage file by file, with ``_SUCCESS`` written last, the
marker Spark and Hadoop readers wait for.

Text outputs (CSV, TSV, JSON lines) are encoded by Arrow a batch at a time, optionally gzip;
Parquet is written a row group per batch.
"""

from __future__ import annotations

import os
import shutil

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from eventlake.io.delta_log import join_path
from eventlake.io.object_store import delete_paths, delete_tree, list_tree, move_object
from eventlake.io.run_marks import is_alive, mark_alive, release, run_of

SUCCESS = "_SUCCESS"
STAGING_SUFFIX = ".eventlake-tmp"


def staging_root(output: str) -> str:
    return output.rstrip("/") + STAGING_SUFFIX


def run_dir(output: str, run_id: str) -> str:
    """Where one run writes everything it will publish (``out/``) and its scratch files."""
    return join_path(staging_root(output), "_tmp", run_id)


def start_staging(output: str, run_id: str) -> None:
    """Mark the run alive, and remove the staged files of earlier runs that died."""
    root = staging_root(output)
    listing = list_tree(root)
    for run in sorted({run_of(p) for p in listing} - {None}):
        if not is_alive(root, run, listing):
            delete_tree(run_dir(output, run))
    mark_alive(root, run_id)


def end_staging(output: str, run_id: str) -> None:
    release(run_id)
    delete_tree(run_dir(output, run_id))
    if "://" not in output:
        for path in (join_path(staging_root(output), "_tmp"), staging_root(output)):
            try:
                os.rmdir(path)
            except OSError:
                pass  # another run's files are there, or it is gone


def existing_output(output: str) -> list[str]:
    """The files under ``output`` now (relative paths)."""
    return sorted(list_tree(output))


def publish(staged: str, output: str, overwrite: bool, marker: bytes) -> None:
    """Make the staged tree the output, with ``marker`` as ``_SUCCESS`` (what the run was: an
    empty object cannot be written through Beam's S3 client). ``FileExistsError`` when the
    output holds files and ``overwrite`` is off (another run may have published meanwhile)."""
    before = existing_output(output)
    if before and not overwrite:
        raise FileExistsError(f"{output} is not empty")
    if "://" not in output:
        with open(os.path.join(staged, SUCCESS), "wb") as handle:
            handle.write(marker)
        _publish_local(staged, output, bool(before))
        return
    if before:
        delete_paths([join_path(output, SUCCESS)])  # no reader may take the mix for a finished output
    new = sorted(list_tree(staged))
    for relative in new:
        move_object(join_path(staged, relative), join_path(output, relative))
    delete_paths([join_path(output, p) for p in before if p not in set(new) | {SUCCESS}])
    with FileSystems.create(join_path(output, SUCCESS), compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        handle.write(marker)


def _publish_local(staged: str, output: str, replace: bool) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    if not replace:
        if os.path.isdir(output):
            os.rmdir(output)  # empty: os.rename would replace it, but only if it stays empty
        os.rename(staged, output)
        return
    old = staged.rstrip("/") + "-replaced"
    os.rename(output, old)
    os.rename(staged, output)
    shutil.rmtree(old, ignore_errors=True)


class OutputFileWriter:
    """One output file being written: text (csv, tsv, jsonl) or Parquet, optionally gzip.

    ``header`` is written first for text files: the column names for CSV, RecBole's typed
    header for TSV.
    """

    def __init__(self, path: str, encoding: str, gzip: bool = False, header: str | None = None):
        self.path, self.encoding, self.rows = path, encoding, 0
        self._gzip, self._header = gzip, header
        self._handle = self._parquet = None

    def write(self, table: pa.Table) -> None:
        if not len(table):
            return
        if self._handle is None:
            compression = CompressionTypes.GZIP if self._gzip and self.encoding != "parquet" else CompressionTypes.UNCOMPRESSED
            self._handle = FileSystems.create(self.path, compression_type=compression)
            if self.encoding == "parquet":
                self._parquet = pq.ParquetWriter(pa.PythonFile(self._handle, mode="w"), table.schema,
                                                 compression="gzip" if self._gzip else "zstd")
            elif self._header is not None:
                self._handle.write(self._header.encode() + b"\n")
        self.rows += len(table)
        if self._parquet is not None:
            self._parquet.write_table(table)
        else:
            self._handle.write(encode_text(table, self.encoding, header=self._header is None and self.rows == len(table)))

    def close(self) -> int:
        """Finish the file; its row count (0: nothing was written and there is no file)."""
        if self._parquet is not None:
            self._parquet.close()
        if self._handle is not None:
            self._handle.close()
        self._handle = self._parquet = None
        return self.rows

    def abort(self) -> None:
        try:
            self.close()
        finally:
            delete_paths([self.path])


def encode_text(table: pa.Table, encoding: str, header: bool) -> bytes:
    """Rows as CSV (RFC 4180, header from the column names), tab-separated (no quoting; values
    must hold no tab or line break: tabs and line breaks become spaces) or JSON lines (a
    ``line`` column of finished JSON documents)."""
    if encoding == "jsonl":
        lines = table.column("line").to_pylist()
        return b"\n".join(lines) + b"\n"
    if encoding == "tsv":
        import pyarrow.compute as pc

        columns = []
        for column in table.columns:
            text = pc.cast(column, pa.string()) if not pa.types.is_string(column.type) else column
            columns.append(pc.fill_null(pc.replace_substring_regex(text, r"[\t\r\n]", " "), ""))
        lines = pc.binary_join_element_wise(*columns, "\t") if len(columns) > 1 else columns[0]
        lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
        whole = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines), "\n")
        return whole[0].as_py().encode() + b"\n" if len(lines) else b""
    sink = pa.BufferOutputStream()
    pcsv.write_csv(table, sink, pcsv.WriteOptions(include_header=header))
    return sink.getvalue().to_pybytes()
