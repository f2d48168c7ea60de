"""Worker throughput: claimed-and-completed no-op jobs/s with 1 and 4 worker processes on PostgreSQL.

    uv run python bench/bench_worker.py              # SCALE=small: 3,000 jobs
    SCALE=full uv run python bench/bench_worker.py   # 60,000 jobs

Creates a database of its own next to SIYU_BENCH_PG_URL's (dropped at the end), loads the jobs with COPY,
runs `python -m siyu.core.worker --burst` processes, and compares with raw SQL from one connection doing
the same transactions (claim a batch; then one guarded done mark and commit per job) and with the engine's
ceiling for this table (one UPDATE ... SKIP LOCKED marking a whole batch done). Prints markdown rows and
writes them to docs/benchmarks_worker.md. Never run in CI.
"""

from __future__ import annotations

import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from siyu.core import jobs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KIND = "bench.noop"
BATCH = 20


@jobs.handler(KIND)
def _noop(_session: Session, _ctx: jobs.JobContext) -> None:
    """Does nothing: the benchmark measures the worker's own cost per job."""


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def load(url: str, n: int) -> None:
    """Empty the jobs table and COPY n due no-op jobs into it."""
    now = datetime.now(UTC)
    with psycopg.connect(_libpq(url)) as conn:
        conn.execute("TRUNCATE jobs")
        with conn.cursor().copy(
            "COPY jobs (kind, idempotency_key, payload, status, run_at, attempts, max_attempts, created_at) "
            "FROM STDIN"
        ) as copy:
            for i in range(n):
                copy.write_row((KIND, f"k{i}", "{}", "pending", now, 0, 8, now))
        conn.execute("ANALYZE jobs")


def check_all_done(url: str, n: int) -> None:
    with psycopg.connect(_libpq(url)) as conn:
        done = conn.execute("SELECT count(*) FROM jobs WHERE status = 'done'").fetchone()
    if done is None or done[0] != n:
        raise SystemExit(f"only {done} of {n} jobs are done")


def steady_rate(url: str, n: int) -> float:
    """Jobs per second between the first and the last job finished (leaves out interpreter start-up)."""
    with psycopg.connect(_libpq(url)) as conn:
        row = conn.execute("SELECT extract(epoch FROM max(finished_at) - min(finished_at)) FROM jobs"
                           ).fetchone()
    span = float(row[0]) if row and row[0] else 0.0
    return (n - 1) / span if span > 0 else float("nan")


def run_workers(url: str, n: int, processes: int) -> tuple[float, float]:
    """Steady jobs/s and wall seconds of `processes` burst workers over n jobs."""
    load(url, n)
    env = {**os.environ, "SIYU_DATABASE_URL": url, "SIYU_JOB_MODULES": "bench_worker",
           "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "src")]), "SIYU_FAULTS": ""}
    args = [sys.executable, "-m", "siyu.core.worker", "--burst", "--batch-size", str(BATCH)]
    started = time.perf_counter()
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(processes)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"worker failed: {err.decode()[-2000:]}")
    wall = time.perf_counter() - started
    check_all_done(url, n)
    return steady_rate(url, n), wall


def raw_same_transactions(url: str, n: int) -> float:
    """One connection, plain SQL, the worker's transactions: claim a batch, then one commit per job."""
    load(url, n)
    started = time.perf_counter()
    with psycopg.connect(_libpq(url)) as conn:
        while True:
            with conn.transaction():
                ids = [r[0] for r in conn.execute(
                    "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = 'raw', "
                    "lease_until = now() + interval '60 seconds' WHERE id IN (SELECT id FROM jobs "
                    "WHERE status = 'pending' AND run_at <= now() ORDER BY run_at LIMIT %s "
                    "FOR UPDATE SKIP LOCKED) RETURNING id", (BATCH,))]
            if not ids:
                break
            for job_id in ids:
                with conn.transaction():
                    conn.execute("UPDATE jobs SET status = 'done', finished_at = now(), lease_until = NULL "
                                 "WHERE id = %s AND locked_by = 'raw' AND status = 'running'", (job_id,))
    elapsed = time.perf_counter() - started
    check_all_done(url, n)
    return n / elapsed


def raw_batch_ceiling(url: str, n: int) -> float:
    """One connection marking whole batches done: the most this table gives, with no per-job commit."""
    load(url, n)
    started = time.perf_counter()
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        while conn.execute(
            "UPDATE jobs SET status = 'done', finished_at = now() WHERE id IN (SELECT id FROM jobs "
            "WHERE status = 'pending' AND run_at <= now() ORDER BY run_at LIMIT %s "
            "FOR UPDATE SKIP LOCKED)",
            (BATCH,),
        ).rowcount:
            pass
    elapsed = time.perf_counter() - started
    check_all_done(url, n)
    return n / elapsed


def main() -> None:
    """Run the benchmark and print/write its rows."""
    scale = os.environ.get("SCALE", "small")
    n = 60_000 if scale == "full" else 3_000
    repeat = int(os.environ.get("REPEAT", "1" if scale == "full" else "3"))
    base = os.environ.get("SIYU_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    name = f"siyu_bench_worker_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        from siyu.core.migrate import upgrade

        upgrade(url)
        # Median of several runs: a shared machine's noise is larger than the differences we look for.
        ones = [run_workers(url, n, 1) for _ in range(repeat)]
        fours = [run_workers(url, n, 4) for _ in range(repeat)]
        same = statistics.median(raw_same_transactions(url, n) for _ in range(repeat))
        ceiling = statistics.median(raw_batch_ceiling(url, n) for _ in range(repeat))
        one, one_wall = (statistics.median(x) for x in zip(*ones, strict=True))
        four, four_wall = (statistics.median(x) for x in zip(*fours, strict=True))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    rows = [
        "| measure | jobs | jobs/s | raw SQL, same transactions | ratio | raw batch ceiling | ratio "
        "| wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| worker, 1 process | {n:,} | {one:,.0f} | {same:,.0f} | {one / same:.2f} | {ceiling:,.0f} | "
        f"{one / ceiling:.2f} | {one_wall:.1f} |",
        f"| worker, 4 processes | {n:,} | {four:,.0f} | {same:,.0f} | {four / same:.2f} | {ceiling:,.0f} | "
        f"{four / ceiling:.2f} | {four_wall:.1f} |",
    ]
    print("\n".join(rows))
    load_avg = os.getloadavg()[0]
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, load {load_avg:.1f} at the end, "
               f"Python {platform.python_version()}, median of {repeat}")
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "benchmarks_worker.md").write_text(
        "## Worker\n\n"
        f"Claimed-and-completed no-op jobs per second on PostgreSQL (SCALE={scale}, batch {BATCH}, "
        f"{machine}; {datetime.now(UTC):%Y-%m-%d}). `uv run python bench/bench_worker.py`.\n\n"
        "jobs/s is measured from the first to the last job finished (it leaves out interpreter start-up, "
        "which the wall time includes). *Raw SQL, same transactions* is one connection doing what the "
        "worker does in plain SQL (claim a batch in one transaction; then one transaction per job with its "
        "guarded done mark, so a job's writes and its done mark commit together); *raw batch ceiling* "
        "marks whole batches done in one statement, with no per-job commit.\n\n"
        + "\n".join(rows) + "\n"
    )


if __name__ == "__main__":
    main()
