"""Composite PTransforms over PCollections of Arrow record batches."""

from eventlake import coders  # noqa: F401 - registers the Arrow coders the transforms' outputs use
