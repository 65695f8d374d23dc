"""The long fault-injection run: many random SIGKILLs of import, purge and rejoin.

    python benchmarks/fault_injection.py --rounds 60 --seed 7

CI runs three rounds of the same test (tests/pipelines/test_faults.py); this runs as many as
asked, with a seed of your choice, and reports how long each round took.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    env = {**os.environ, "EVENTLAKE_FAULT_ROUNDS": str(args.rounds), "EVENTLAKE_FAULT_SEED": str(args.seed)}
    started = time.time()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x",
                             "tests/pipelines/test_faults.py::test_jobs_killed_at_random_times_leave_a_version_and_the_rerun_completes"],
                            cwd=ROOT, env=env)
    seconds = time.time() - started
    print(f"{args.rounds} rounds, seed {args.seed}: {'passed' if result.returncode == 0 else 'FAILED'} "
          f"in {seconds:.0f} s ({seconds / args.rounds:.1f} s per round)")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
