"""The Airflow example loads with Airflow's own ``DagBag`` (when Airflow is installed: the
``airflow`` extra, which ``.ci/run`` installs), and each task's command renders to valid shell
calling the right eventlake job."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[1] / "examples" / "airflow"
LOAD = """
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag  # Airflow 3
except ImportError:
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("eventlake_daily")
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags),
                  "downstream": {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks} if dag else {},
                  "commands": {t.task_id: t.bash_command for t in dag.tasks if hasattr(t, "bash_command")} if dag else {}}))
"""


@pytest.mark.skipif(importlib.util.find_spec("airflow") is None, reason="Airflow is not installed (the airflow extra)")
def test_the_daily_dag_loads_in_airflows_dagbag(tmp_path):
    # in a process of its own: importing Airflow configures logging for the whole process
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run([sys.executable, "-c", LOAD, str(DAGS)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["errors"] == {} and found["dags"] == ["eventlake_daily"]
    assert found["downstream"] == {"import_events": ["catalog_landed"], "catalog_landed": ["rejoin_unjoined"],
                                   "rejoin_unjoined": ["export_new"], "export_new": []}
    import jinja2

    variables = {"value": {"get": lambda key, default: default}}
    for task, command in found["commands"].items():
        rendered = jinja2.Template(command).render(ds="2024-06-01", var=variables)
        job = {"import_events": "import", "rejoin_unjoined": "rejoin", "export_new": "export"}[task]
        assert f"eventlake {job} " in rendered and "2024-06-01" in rendered and "{{" not in rendered
        syntax = subprocess.run(["bash", "-n", "-c", rendered], capture_output=True, text=True)
        assert syntax.returncode == 0, (task, syntax.stderr)
