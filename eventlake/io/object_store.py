"""What the store needs from object storage beyond Beam's ``FileSystems``.

- **Create-if-absent** for commits: a local exclusive link, GCS ``ifGenerationMatch=0``, S3
  ``If-None-Match: *``. Whoever creates a log version first owns it; the other gets
  ``CommitConflict``.
- **Deletes** one object per request: Beam deletes GCS objects through the JSON batch API,
  which fake-gcs-server (and other emulators) do not serve.
- **Credentials** are checked once, up front, so that a missing login is one clear error
  instead of Beam's 20-second retry loop. With ``STORAGE_EMULATOR_HOST`` set, GCS is the
  emulator and needs none.
"""

from __future__ import annotations

import functools
import os
import posixpath
import uuid

from apache_beam.io.filesystems import FileSystems

from eventlake.faults import fault_point


class CommitConflict(RuntimeError):
    """Another writer created the object first."""


class MissingCredentials(RuntimeError):
    """The cloud's SDK found no credentials; the message says how to provide them."""


def scheme(path: str) -> str:
    return path.split("://", 1)[0] if "://" in path else "file"


def _bucket_and_key(path: str) -> tuple[str, str]:
    bucket, _, key = path.split("://", 1)[1].partition("/")
    return bucket, key


def put_if_absent(path: str, data: bytes) -> None:
    """Create ``path`` holding ``data``; raise ``CommitConflict`` if it exists already."""
    kind = scheme(path)
    if kind == "gs":
        from google.api_core.exceptions import PreconditionFailed

        bucket, key = _bucket_and_key(path)
        try:
            _gcs_client().bucket(bucket).blob(key).upload_from_string(data, if_generation_match=0)
        except PreconditionFailed:
            raise CommitConflict(f"{posixpath.basename(path)} was created by another writer") from None
    elif kind == "s3":
        from botocore.exceptions import ClientError

        bucket, key = _bucket_and_key(path)
        try:
            _s3_client().put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise CommitConflict(f"{posixpath.basename(path)} was created by another writer") from None
            raise
    elif kind == "file":
        _put_if_absent_local(path, data)
    else:
        raise ValueError(f"{path}: the store can live on local disk, gs:// or s3://, not {kind}://")


def _put_if_absent_local(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    fault_point("log-temp-written")
    try:
        os.link(temp, path)  # atomic, and fails when the path exists: a reader never sees half a file
    except FileExistsError:
        raise CommitConflict(f"{posixpath.basename(path)} was created by another writer") from None
    finally:
        os.unlink(temp)


def delete_paths(paths: list[str]) -> None:
    """Delete files; ones already gone are fine."""
    for path in paths:
        if scheme(path) == "gs":
            from google.api_core.exceptions import NotFound

            bucket, key = _bucket_and_key(path)
            try:
                _gcs_client().bucket(bucket).blob(key).delete()
            except NotFound:
                pass
        else:
            try:
                FileSystems.delete([path])
            except OSError:  # BeamIOError: not there
                pass


def move_object(source: str, target: str) -> None:
    """Move one file: a rename on local disk, a server-side copy and a delete on object storage."""
    if scheme(source) == "gs":
        bucket, key = _bucket_and_key(source)
        target_bucket, target_key = _bucket_and_key(target)
        client = _gcs_client()
        client.bucket(bucket).copy_blob(client.bucket(bucket).blob(key), client.bucket(target_bucket), target_key)
        delete_paths([source])
    elif scheme(source) == "s3":
        bucket, key = _bucket_and_key(source)
        target_bucket, target_key = _bucket_and_key(target)
        _s3_client().copy_object(Bucket=target_bucket, Key=target_key, CopySource={"Bucket": bucket, "Key": key})
        delete_paths([source])
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(source, target)


def list_tree(root: str) -> dict[str, tuple[int, float]]:
    """Every file under ``root`` (recursively): path relative to ``root`` -> (size, modified time)."""
    from apache_beam.io.filesystems import FileSystems

    prefix = root.rstrip("/") + "/"
    try:
        found = FileSystems.match([prefix + "**"])[0].metadata_list
    except Exception as exc:  # noqa: BLE001 - BeamIOError wraps a missing root
        if not FileSystems.exists(root.rstrip("/")):
            return {}
        raise exc
    return {m.path[len(prefix):]: (int(m.size_in_bytes), float(m.last_updated_in_seconds or 0.0))
            for m in found if m.path.startswith(prefix)}


def delete_tree(path: str) -> None:
    """Remove a directory (a prefix, on object storage) and everything under it."""
    if scheme(path) == "gs":
        prefix = path.rstrip("/") + "/"
        bucket, key = _bucket_and_key(prefix)
        delete_paths([f"gs://{bucket}/{blob.name}" for blob in _gcs_client().list_blobs(bucket, prefix=key)])
        return
    delete_paths([path.rstrip("/") + "/" if "://" in path else path])


def is_missing(exc: BaseException) -> bool:
    """Whether reading failed because the object is not there (each client says it its own way)."""
    if isinstance(exc, FileNotFoundError):
        return True
    try:
        from google.api_core.exceptions import NotFound
    except ImportError:
        return False
    return isinstance(exc, NotFound)


def check_credentials(paths: list[str]) -> None:
    """Fail at once, clearly, when a cloud path is used without credentials for it."""
    kinds = {scheme(p) for p in paths}
    for kind, extra, module in (("gs", "gcp", "google.cloud.storage"), ("s3", "aws", "boto3")):
        if kind in kinds:
            try:
                __import__(module)
            except ImportError:
                raise MissingCredentials(f"{kind}:// paths need the {extra} extra: pip install 'eventlake[{extra}]'") from None
    if "gs" in kinds and not os.environ.get("STORAGE_EMULATOR_HOST"):
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            google.auth.default()
        except DefaultCredentialsError:
            raise MissingCredentials(
                "no Google Cloud credentials for gs:// paths: run 'gcloud auth application-default login' or set "
                "GOOGLE_APPLICATION_CREDENTIALS (or STORAGE_EMULATOR_HOST for an emulator)") from None
    if "s3" in kinds:
        import boto3

        if boto3.Session().get_credentials() is None:
            raise MissingCredentials(
                "no AWS credentials for s3:// paths: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                "or run where an instance role applies")


def use_gcs_emulator_if_set() -> None:
    """With ``STORAGE_EMULATOR_HOST`` set, make Beam's GCS client anonymous from the start.

    Beam 2.77 asks Application Default Credentials first, retrying for about 20 seconds in
    every process, before it connects anonymously; it has no option to skip that (``--no_auth``
    applies to Dataflow's API client only). Its credential cache is seeded here instead. This
    touches a private class of Beam, whose version setup.py pins.
    """
    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        return
    try:
        from apache_beam.internal.gcp import auth
    except ImportError:
        return
    with auth._Credentials._credentials_lock:
        auth._Credentials._credentials, auth._Credentials._credentials_init = None, True


@functools.lru_cache(maxsize=1)
def _gcs_client():
    from google.cloud import storage

    return storage.Client()  # the emulator's address and anonymous credentials when it is set


@functools.lru_cache(maxsize=1)
def _s3_client():
    import boto3

    return boto3.client("s3")  # endpoint, region and credentials from the usual AWS settings
