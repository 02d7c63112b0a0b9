"""Retry of transient store write errors: a chunk write that fails with an ``OSError`` (a
network file system or object store that hiccups) is tried again with exponential back-off.

:class:`RetryingTarget` wraps the target of a ``dask.array.store`` (a Zarr array), so that each
chunk write retries on its own, on any scheduler, without recomputing the chunk. A chunk write
is idempotent (the same bytes to the same key), so a retry cannot change the store.

>>> import numpy as np
>>> out = RetryingTarget(np.zeros(4), attempts=3, backoff=0.0)
>>> out[1:3] = 7.0
>>> out.target
array([0., 7., 7., 0.])
"""

from __future__ import annotations

import logging
import time
from typing import Any

from esmscale.errors import EsmscaleError

__all__ = ["ATTEMPTS", "BACKOFF", "RETRIES", "TRANSIENT", "RetryingTarget"]

#: Write attempts per chunk (the first try included) and the first back-off in seconds
#: (doubled after each failure: 0.2, 0.4, 0.8 s).
ATTEMPTS, BACKOFF = 4, 0.2

#: Exceptions taken as transient. Anything else (a wrong dtype, a wrong shape) fails at once.
TRANSIENT: tuple[type[BaseException], ...] = (OSError, TimeoutError)

#: Retries made in this process (for diagnostics and the reliability report).
RETRIES: list[str] = []

_log = logging.getLogger(__name__)


class RetryingTarget:
    """``target[key] = value`` tried up to ``attempts`` times on a transient error.

    Parameters
    ----------
    target
        Anything with ``__setitem__``, typically a ``zarr.Array``.
    attempts
        Tries in all (>= 1).
    backoff
        Seconds before the second try, doubled for each further one.
    label
        What is written (e.g. the variable name), for the log and the final error.

    Examples
    --------
    A store that fails once, then answers:

    >>> import numpy as np
    >>> class Flaky:
    ...     def __init__(self, fails):
    ...         self.data, self.fails = np.zeros(4), fails
    ...     def __setitem__(self, key, value):
    ...         if self.fails:
    ...             self.fails -= 1
    ...             raise TimeoutError("no answer")
    ...         self.data[key] = value
    >>> out = RetryingTarget(Flaky(fails=1), backoff=0.0, label="pr")
    >>> out[0:2] = 5.0
    >>> out.target.data.tolist(), RETRIES[-1]
    ([5.0, 5.0, 0.0, 0.0], 'pr[0:2]: TimeoutError: no answer')
    >>> RetryingTarget(Flaky(fails=9), attempts=2, backoff=0.0, label="pr")[2:4] = 1.0
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: writing pr[2:4] failed 2 times in a row (TimeoutError: ...
    """

    def __init__(
        self, target: Any, attempts: int = ATTEMPTS, backoff: float = BACKOFF, label: str = ""
    ) -> None:
        if attempts < 1:
            raise EsmscaleError(f"attempts={attempts} must be >= 1.")
        self.target = target
        self.attempts = attempts
        self.backoff = backoff
        self.label = label

    @property
    def shape(self) -> tuple[int, ...]:
        """The target's shape."""
        return tuple(self.target.shape)

    @property
    def dtype(self) -> Any:
        """The target's dtype."""
        return self.target.dtype

    def __setitem__(self, key: Any, value: Any) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                self.target[key] = value
                return
            except TRANSIENT as err:
                what = f"{self.label or 'chunk'}[{_fmt(key)}]"
                if attempt == self.attempts:
                    raise EsmscaleError(
                        f"writing {what} failed {attempt} times in a row "
                        f"({type(err).__name__}: {err}); the store is not answering. Check that "
                        "it is reachable and writable, then resume the write (resume=True, "
                        "or --resume): chunks already written are kept"
                    ) from err
                RETRIES.append(f"{what}: {type(err).__name__}: {err}")
                _log.warning("retrying %s after %s: %s", what, type(err).__name__, err)
                time.sleep(self.backoff * 2 ** (attempt - 1))


def _fmt(key: Any) -> str:
    keys = key if isinstance(key, tuple) else (key,)
    return ", ".join(f"{k.start}:{k.stop}" if isinstance(k, slice) else str(k) for k in keys)
