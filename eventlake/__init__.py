"""eventlake: a batch pipeline on Apache Beam that imports, validates, joins and stores user events."""

__version__ = "0.1.0"


def read_events(store: str, filter: str | None = None, columns: list[str] | None = None,  # noqa: A002
                version: int | None = None, since_version: int | None = None, as_arrow: bool = False):
    """The store's events as a pandas DataFrame (or, with ``as_arrow``, an Arrow table).

    Args:
        store: the event store (local path, ``gs://`` or ``s3://``).
        filter: only events matching this filter (the purge filter language).
        columns: the columns to read (default all, ``event_date`` included).
        version: the store version to read (default the latest).
        since_version: only events that imports after this version brought in.

    Read in this process, file by file: for a store that fits in memory. Larger exports go
    through ``eventlake export`` or ``eventlake.transforms.read_store.ReadEventStore``.
    """
    from eventlake.transforms.read_store import read_events_table

    table = read_events_table(store, filter, columns, version, since_version)
    return table if as_arrow else table.to_pandas()
