"""A real store for the tests: ``WANGGE_TEST_MONGO_URI`` if set, else a
SecantusDB server started on a free loopback port and stopped afterwards."""
import os
from contextlib import contextmanager

from devstack.processes import start_store, store_answers, wait_until
from tests.support.ports import free_port


@contextmanager
def running_store(storage_dir):
    external = os.environ.get("WANGGE_TEST_MONGO_URI")
    if external:
        yield external
        return
    port = free_port()
    store = start_store(port, storage_dir / "data", storage_dir / "secantus.log")
    uri = f"mongodb://127.0.0.1:{port}/?retryWrites=false"
    try:
        wait_until(lambda: store_answers(uri), 30, "the store answered", process=store)
        yield uri
    finally:
        store.stop()
