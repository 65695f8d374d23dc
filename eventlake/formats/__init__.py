"""Source formats: each module turns raw records of one format into canonical Arrow batches.

A format exposes ``parse_block(block: LineBlock) -> (pa.RecordBatch, list[error dict])``; the
batch has ``PARSED_SCHEMA`` and every line that is not in it is in the error list.
"""
