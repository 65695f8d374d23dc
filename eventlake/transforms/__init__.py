"""Composite PTransforms over PCollections of Arrow record batches."""
