"""Reading source files, the Delta event store, error samples and summaries, through Beam's FileSystems."""
