"""One module per job: each composes transforms into a Beam pipeline and runs it."""
