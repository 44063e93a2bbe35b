"""A Dask client for any work that splits into independent pieces: sweep cells, or noisy evaluations of images.

``with get_client(scheduler, workers) as client:`` connects to an existing ``dask.distributed`` scheduler (a short
connect timeout, then one clear line), or starts a ``LocalCluster`` of worker *processes* with one thread each
(torch, OpenMP and BLAS limited to one thread, so N workers use N cores and do not fight over them). Local
workers inherit this process' environment and ``sys.path``, so they run the same checkout; that is checked.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import qmae_qiskit
from qmae_qiskit.errors import QMAEError, one_line

DEFAULT_CONNECT_TIMEOUT = 5.0
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
}


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def connect(scheduler: str, timeout: float = DEFAULT_CONNECT_TIMEOUT) -> Any:
    """A client of the scheduler at ``scheduler``; one line if it does not answer within ``timeout`` seconds."""
    from distributed import Client  # lazy: Dask adds ~1 s; only sweeps and clustered studies need it

    try:
        return Client(scheduler, timeout=timeout, set_as_default=False)
    except Exception as exc:  # OSError / TimeoutError / ValueError for a malformed address
        raise QMAEError(
            f"no Dask scheduler answers at {scheduler!r} within {timeout:g} s ({one_line(exc)}); start one "
            f"(`dask scheduler` and `dask worker ADDRESS`) or drop --scheduler to use a local cluster"
        ) from None


def local_cluster(workers: int, threads: int = 1) -> Any:
    """A LocalCluster of ``workers`` processes, ``threads`` threads each, quiet logs."""
    from distributed import LocalCluster  # lazy: Dask adds ~1 s; only sweeps and clustered studies need it

    env = {**SINGLE_THREAD_ENV, **{k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}}
    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # any free port: never collides with another cluster on 8787
        silence_logs=logging.ERROR,
        env=env,
    )


def worker_package_paths(client: Any) -> dict[str, str]:
    """Where each worker imports qmae_qiskit from (a worker on another checkout would run other code)."""

    def where() -> str:
        return os.path.dirname(os.path.abspath(qmae_qiskit.__file__))

    return client.run(where)


@contextmanager
def get_client(
    scheduler: str | None = None,
    workers: int | None = None,
    *,
    threads: int = 1,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> Iterator[Any]:
    """A ``distributed.Client``: of ``scheduler`` if given, else of a new LocalCluster (closed on exit).

    ``workers`` defaults to the cores; it is an error together with ``scheduler`` (the cluster has its own).
    """
    if scheduler is not None and workers is not None:
        raise QMAEError("--workers is for the local cluster; with --scheduler the cluster's own workers run the tasks")
    if scheduler is not None:
        client = connect(scheduler, connect_timeout)
        try:
            yield client
        finally:
            client.close()
        return
    n = default_workers() if workers is None else workers
    if n < 1:
        raise QMAEError(f"--workers must be at least 1, got {n}")
    from distributed import Client  # lazy: Dask adds ~1 s; only sweeps and clustered studies need it

    cluster = local_cluster(n, threads)
    client = Client(cluster, set_as_default=False)
    try:
        here = os.path.dirname(os.path.abspath(qmae_qiskit.__file__))
        elsewhere = {w: p for w, p in worker_package_paths(client).items() if p != here}
        if elsewhere:
            raise QMAEError(
                f"local Dask workers import qmae_qiskit from {sorted(set(elsewhere.values()))}, not {here}; "
                f"export PYTHONPATH so that they run this checkout"
            )
        yield client
    finally:
        client.close()
        cluster.close()
