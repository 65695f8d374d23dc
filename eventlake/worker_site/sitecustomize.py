"""Loaded by the local Beam worker processes of an eventlake job (their PYTHONPATH names this
folder): Ctrl-C at a terminal reaches every process of the job, and a worker that ends on it
should end quietly, leaving the one line of the job's own process to say what happened."""

import signal

signal.signal(signal.SIGINT, signal.SIG_DFL)
