"""eventlake: a batch pipeline on Apache Beam that imports, validates, joins and stores user events."""

__version__ = "0.1.0"
