"""Where a Zarr store lies: a local folder or an fsspec URL (``s3://``, ``memory://``, ...).

:func:`open_location` turns what a user gives as an output (a path, or a URL plus fsspec
``storage_options``) into a :class:`Location`: the few file operations the Zarr writer needs
(existence, JSON metadata, listing chunk keys, removing a folder) and the object handed to
zarr and xarray. A local path stays a local folder (zarr's ``LocalStore``, atomic writes); a URL
becomes a ``zarr.storage.FsspecStore`` over the filesystem of its protocol.

Bad input is refused before anything is written: a protocol whose fsspec backend is not
installed names the package to install; object storage without credentials names the
environment variables and ``storage_options`` keys that are read. Secrets are never printed:
errors name option keys, never their values, and user information in a URL is masked.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esmscale.errors import EsmscaleError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["CREDENTIALS", "Location", "StoreLike", "is_url", "open_location"]

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_LOCAL = ("file", "local")

#: What is read for each protocol's credentials, in the order the backend tries them.
CREDENTIALS: dict[str, str] = {
    "s3": (
        "the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
        "AWS_SESSION_TOKEN for temporary credentials), AWS_PROFILE with ~/.aws/credentials, or "
        "the storage_options keys 'key', 'secret' and 'token' (anon=True for a public bucket); "
        "a non-AWS server is named by AWS_ENDPOINT_URL or storage_options "
        "{'endpoint_url': ...}"
    ),
    "gs": (
        "GOOGLE_APPLICATION_CREDENTIALS (a service-account JSON file), gcloud's default "
        "credentials, or storage_options {'token': ...}"
    ),
    "az": (
        "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN or "
        "AZURE_STORAGE_CONNECTION_STRING, or the storage_options keys 'account_name', "
        "'account_key', 'sas_token' and 'connection_string'"
    ),
}
_ALIASES = {"s3a": "s3", "gcs": "gs", "abfs": "az", "abfss": "az", "adl": "az"}
_PIP = {"s3": "s3fs (pip install 'esmscale[s3]')", "gs": "gcsfs", "az": "adlfs"}


def is_url(store: str | os.PathLike[str]) -> bool:
    """Whether ``store`` is a URL of a non-local fsspec filesystem (``s3://...``).

    Examples
    --------
    >>> is_url("s3://bucket/out.zarr"), is_url("out.zarr"), is_url("file:///tmp/out.zarr")
    (True, False, False)
    """
    match = _URL.match(os.fspath(store)) if isinstance(store, str) else None
    return match is not None and match.group(1).lower() not in _LOCAL


def _masked(url: str) -> str:
    """``url`` with any user information (``user:password@``) masked."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/@]*@", r"\1***@", url)


def _credential_names(protocol: str) -> str:
    return CREDENTIALS.get(_ALIASES.get(protocol, protocol), "the backend's own settings")


def _filesystem(url: str, protocol: str, options: Mapping[str, Any]) -> AbstractFileSystem:
    """The fsspec filesystem of ``protocol``; errors name the package to install."""
    import fsspec
    from fsspec.registry import known_implementations

    try:
        cls = fsspec.get_filesystem_class(protocol)
    except ValueError:
        raise EsmscaleError(
            f"output {_masked(url)!r}: fsspec knows no filesystem for the protocol "
            f"{protocol!r}; use a local path or a URL such as s3://bucket/out.zarr, "
            "memory://out.zarr (this process only), gs://... or az://..."
        ) from None
    except ImportError:
        known = known_implementations.get(protocol, {})
        package = _PIP.get(_ALIASES.get(protocol, protocol))
        if package is None:
            package = str(known.get("class", "")).split(".")[0] or f"the {protocol} backend"
        raise EsmscaleError(
            f"output {_masked(url)!r}: the protocol {protocol!r} needs the fsspec backend "
            f"{package}, which is not installed. Install it (pip install "
            f"{package.split(' ')[0]}) or write to a local path"
        ) from None
    try:
        return cls(**dict(options))
    except TypeError as err:
        raise EsmscaleError(
            f"output {_masked(url)!r}: storage_options keys {sorted(options)} were refused by "
            f"{cls.__name__} ({err}); see that filesystem's documentation for its options"
        ) from None


class Location:
    """A Zarr store's place: a local folder or a folder of an fsspec filesystem.

    Made by :func:`open_location`. Keys are ``/``-separated and relative to the store root
    (``"pr/zarr.json"``); ``""`` is the root itself.

    Attributes
    ----------
    url : str
        The store as given (a path or a URL), user information masked; used in messages.
    fs : fsspec.AbstractFileSystem
        The filesystem (``LocalFileSystem`` for a local folder).
    root : str
        The store root in ``fs``'s own path form, without a trailing ``/``.
    local : bool
        Whether the store is a local folder.

    Examples
    --------
    >>> loc = open_location("memory://example/out.zarr")
    >>> loc.local, loc.exists()
    (False, False)
    >>> open_location("out.zarr").local
    True
    """

    def __init__(
        self,
        url: str,
        fs: AbstractFileSystem,
        root: str,
        *,
        local: bool,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = _masked(url)
        self.fs = fs
        self.root = root.rstrip("/") or root
        self.local = local
        self._options = dict(storage_options or {})

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"Location({self.url!r})"

    @property
    def name(self) -> str:
        """Last part of the store's path, e.g. ``"out.zarr"``."""
        return self.root.rsplit("/", 1)[-1]

    @property
    def path(self) -> Path | str:
        """What :class:`WriteSummary` reports: a ``Path`` for a local store, else the URL."""
        return Path(self.root) if self.local else self.url

    def _full(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def zarr_store(self) -> Any:
        """The store to hand zarr and xarray: the folder's ``Path``, or an ``FsspecStore``."""
        if self.local:
            return Path(self.root)
        from zarr.storage import FsspecStore
        from zarr.storage._fsspec import _make_async

        return FsspecStore(_make_async(self.fs), path=self.root)

    def _fresh(self) -> AbstractFileSystem:
        """The filesystem with its listings cache dropped.

        Zarr writes through its own (async) copy of the filesystem, so listings cached here
        would not see its writes: a resume must list what is in the store now.
        """
        self.fs.invalidate_cache()
        return self.fs

    def exists(self, key: str = "") -> bool:
        """Whether a file or folder exists at ``key``."""
        return bool(self._fresh().exists(self._full(key)))

    def isdir(self, key: str = "") -> bool:
        """Whether ``key`` is a folder (a prefix, on object storage)."""
        return bool(self._fresh().isdir(self._full(key)))

    def isfile(self, key: str = "") -> bool:
        """Whether ``key`` is a file (an object, on object storage)."""
        return bool(self._fresh().isfile(self._full(key)))

    def children(self) -> list[str]:
        """Names directly under the root (empty if the root is absent)."""
        try:
            entries = self._fresh().ls(self.root, detail=False)
        except FileNotFoundError:
            return []
        return [str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries]

    def read_json(self, key: str) -> dict[str, Any] | None:
        """Parse the JSON file at ``key``; ``None`` when it is missing, unreadable or no object."""
        try:
            with self.fs.open(self._full(key), "rb") as f:
                out = json.loads(f.read().decode("utf-8"))
        except (OSError, ValueError):
            return None
        return out if isinstance(out, dict) else None

    def files(self, prefix: str) -> list[str]:
        """Keys of all files under the folder ``prefix``, relative to it (one listing)."""
        base = self._full(prefix)
        try:
            found = self._fresh().find(base, withdirs=False)
        except FileNotFoundError:
            return []
        base = self.fs._strip_protocol(base).rstrip("/")
        return [str(f)[len(base) + 1 :] for f in found if str(f).startswith(base + "/")]

    def remove(self, key: str) -> None:
        """Remove the file or folder at ``key``, if present."""
        full = self._full(key)
        if self.fs.exists(full):
            self.fs.rm(full, recursive=True)


def open_location(
    store: str | os.PathLike[str] | Location,
    storage_options: Mapping[str, Any] | None = None,
) -> Location:
    """The :class:`~esmscale.io.stores.Location` of a local path or an fsspec URL.

    Parameters
    ----------
    store : str, os.PathLike or Location
        A local path (``out.zarr``, ``file:///data/out.zarr``) or a URL of an fsspec filesystem:
        ``s3://bucket/out.zarr`` (needs ``s3fs``: ``pip install 'esmscale[s3]'``),
        ``memory://out.zarr`` (in this process only), ``gs://...`` (``gcsfs``), ``az://...``
        (``adlfs``). A :class:`~esmscale.io.stores.Location` is returned as it is.
    storage_options : mapping, optional
        Options of the URL's filesystem, e.g. ``{"endpoint_url": "http://127.0.0.1:9000"}`` or
        ``{"anon": True}`` for S3. Credentials are best left to the environment
        (``AWS_ACCESS_KEY_ID``, ...: see :data:`~esmscale.io.stores.CREDENTIALS`). Not allowed
        with a local path.

    Returns
    -------
    Location

    Raises
    ------
    EsmscaleError
        If the protocol is unknown or its backend is not installed (the error names the
        package), if ``storage_options`` are given for a local path or refused by the
        filesystem, if object storage finds no credentials or refuses them (the error names
        what is read, never a value), or if the bucket does not exist.

    Examples
    --------
    >>> loc = open_location("memory://doc/out.zarr")
    >>> loc.local, loc.name, loc.exists()
    (False, 'out.zarr', False)
    >>> open_location("out.zarr").local
    True
    """
    if isinstance(store, Location):
        return store
    text = os.fspath(store)
    options = dict(storage_options or {})
    if not is_url(text):
        if options:
            raise EsmscaleError(
                f"output {text!r} is a local path, so storage_options {sorted(options)} would "
                "be ignored; drop them, or give a URL such as s3://bucket/out.zarr"
            )
        from fsspec.implementations.local import LocalFileSystem

        local = re.sub(r"^(file|local)://", "", text)
        return Location(text, LocalFileSystem(), str(Path(local).absolute()), local=True)
    match = _URL.match(text)
    assert match is not None
    protocol = match.group(1).lower()
    fs = _filesystem(text, protocol, options)
    root = str(fs._strip_protocol(text)).rstrip("/")
    location = Location(text, fs, root, local=False, storage_options=options)
    _probe(location, protocol, options)
    return location


def _probe(location: Location, protocol: str, options: Mapping[str, Any]) -> None:
    """Touch the store once, so that missing credentials or bucket fail before any write."""
    url = location.url
    given = f" (storage_options keys given: {sorted(options)})" if options else ""
    try:
        location.exists()
        bucket = location.root.split("/", 1)[0]
        missing_bucket = protocol in ("s3", "s3a", "gs", "gcs") and not location.fs.exists(bucket)
    except Exception as err:  # the backends raise their own types (botocore, google.auth...)
        kind = type(err).__name__
        if kind == "NoCredentialsError" or "credential" in str(err).lower():
            problem = "no credentials were found"
        elif isinstance(err, PermissionError) or kind in ("ClientError", "HttpError"):
            problem = f"the credentials were refused ({kind})"
        else:
            raise EsmscaleError(
                f"output {url!r}: the store could not be reached ({kind}){given}; check the "
                "address (endpoint) and the network, then run again"
            ) from None
        raise EsmscaleError(
            f"output {url!r}: {problem}{given}. esmscale reads {_credential_names(protocol)}. "
            "Set them (no value is printed here) and run again"
        ) from None
    if missing_bucket:
        raise EsmscaleError(
            f"output {url!r}: the bucket {bucket!r} does not exist (or these credentials cannot "
            "see it); create it first, e.g. aws s3 mb s3://" + bucket
        )


StoreLike = str | os.PathLike[str] | Location
"""A store as the writer accepts it: a local path, an fsspec URL, or a :class:`Location`."""
