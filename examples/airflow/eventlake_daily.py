"""A daily eventlake run on Apache Airflow: import yesterday's files, rejoin the unjoined events
once the day's catalog export has landed, then export what is new for the trainer.

Why plain command operators (``BashOperator``) and not the Apache Beam provider's
``BeamRunPythonPipelineOperator``: an eventlake job is more than its Beam pipeline. The command
plans (which files are new, which store version to read), runs the pipeline, then commits to the
Delta log and cleans up in the driver, and it says how all of that went in its exit code (0 done,
1 failed with the store as it was, 2 a bad setting) and in ``<store>/_runs/<job>.json``. The
Beam operator runs a pipeline file and tracks a Dataflow job; it would skip the driver's work
or hide it. The command runs the same on any runner: add ``--runner DataflowRunner --project ...
--region ... --temp_location gs://...`` (or Flink, Spark) to ``BEAM_FLAGS`` and the pipeline
runs there while the task waits for it. Retries are safe: a failed run committed nothing, and a
rerun skips the files a successful run imported.

Set the Airflow Variables ``eventlake_home`` (a folder with ``jobs.yaml`` and the virtual
environment), ``eventlake_events`` (where each day's files land, ``<root>/<YYYY-MM-DD>/``) and
``eventlake_catalog`` (where the catalog export lands, same layout), or edit the defaults below.
"""

from __future__ import annotations

import datetime as dt

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.sensors.filesystem import FileSensor
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.9+
    from airflow import DAG
    from airflow.operators.bash import BashOperator
    from airflow.sensors.filesystem import FileSensor

HOME = "{{ var.value.get('eventlake_home', '/srv/eventlake') }}"
EVENTS = "{{ var.value.get('eventlake_events', '/data/events') }}"
CATALOG = "{{ var.value.get('eventlake_catalog', '/data/catalog') }}"
STORE = f"{HOME}/store"
BEAM_FLAGS = ""  # e.g. "--runner DataflowRunner --project my-project --region europe-west1 ..."
EVENTLAKE = f"cd {HOME} && . .venv/bin/activate && eventlake"
DAY = "{{ ds }}"  # the day the run is for: yesterday, for a daily schedule

with DAG(
    dag_id="eventlake_daily",
    description="import yesterday's events, rejoin against the new catalog, export what is new",
    schedule="@daily",
    start_date=dt.datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,  # runs overlap safely, but one at a time keeps the exports in order
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=10)},
    tags=["eventlake"],
) as dag:
    import_events = BashOperator(
        task_id="import_events",
        bash_command=f'{EVENTLAKE} import --config jobs.yaml --events "{EVENTS}/{DAY}/*.json*" --store {STORE} '
                     f"--no-progress --log-format json {BEAM_FLAGS}",
    )
    catalog_landed = FileSensor(
        task_id="catalog_landed",
        filepath=f"{CATALOG}/{DAY}/products.json",
        poke_interval=300,
        timeout=6 * 3600,
        mode="reschedule",  # no worker slot held while waiting
    )
    rejoin_unjoined = BashOperator(
        task_id="rejoin_unjoined",
        bash_command=f"{EVENTLAKE} rejoin --store {STORE} --catalog {CATALOG}/{DAY}/products.json --scope unjoined "
                     f"--log-format json {BEAM_FLAGS}",
    )
    export_new = BashOperator(
        task_id="export_new",
        # the last export's store version, from its summary in the store: the next one takes what came after
        bash_command=(f"{EVENTLAKE} export --store {STORE} --format personalize --output {HOME}/exports/{DAY} "
                      f"--overwrite --log-format json "
                      f"$(python3 -c \"import json,sys; print('--since-version', json.load(open(sys.argv[1]))"
                      f"['version'])\" {STORE}/_runs/export.json 2>/dev/null) {BEAM_FLAGS}"),
    )

    import_events >> catalog_landed >> rejoin_unjoined >> export_new
