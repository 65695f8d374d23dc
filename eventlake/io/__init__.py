"""Reading source files, the Delta event store, error samples and summaries, through Beam's FileSystems."""

from eventlake.io.object_store import use_gcs_emulator_if_set

# Every process that touches files imports this package first, workers included.
use_gcs_emulator_if_set()
