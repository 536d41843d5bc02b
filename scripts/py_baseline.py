"""The Python baseline of the end-to-end benchmark (benches/e2e.rs).

The approach of seed 001: a ThreadPoolExecutor, one requests.Session per thread, tenacity
retrying with exponential backoff and jitter, one POST per event. Usage:

    python3 scripts/py_baseline.py URL EVENTS THREADS

Prints one JSON line: {"events": N, "seconds": S, "errors": E}.
"""

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

import requests
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

URL = sys.argv[1]
EVENTS = int(sys.argv[2])
THREADS = int(sys.argv[3])

_local = threading.local()


def session():
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
    return s


@retry(
    stop=stop_after_attempt(5),
    wait=wait_exponential_jitter(initial=0.5, max=30),
    retry=retry_if_exception_type(requests.RequestException),
    reraise=True,
)
def post(body):
    r = session().post(URL, data=body, headers={"Content-Type": "application/json"}, timeout=15)
    r.raise_for_status()


def line(i):
    # The same ~200-byte log line as the Rust side.
    return {
        "ts": 1_722_000_000_000 + i,
        "level": "info",
        "logger": "solver.inner_loop",
        "msg": "step converged within tolerance after refinement",
        "step": i,
        "residual": 0.0001234,
        "host": "node-17.cluster.internal",
        "tags": ["numeric", "hot"],
    }


def main():
    pool = ThreadPoolExecutor(max_workers=THREADS)
    start = time.perf_counter()
    futures = [pool.submit(post, json.dumps(line(i), separators=(",", ":"))) for i in range(EVENTS)]
    wait(futures)
    seconds = time.perf_counter() - start
    pool.shutdown()
    errors = sum(1 for f in futures if f.exception() is not None)
    print(json.dumps({"events": EVENTS, "seconds": seconds, "errors": errors}))


if __name__ == "__main__":
    main()
