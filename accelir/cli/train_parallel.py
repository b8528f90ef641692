"""Several ``accelir train ir`` jobs side by side until one wall-clock deadline.

For a lent GPU machine (one GPU, 16 cores, a fixed slot): every job is its own process with an
equal share of the CPU cores (its patch pool, its CUDA context), all train until the same
deadline, then validate and export; whatever is still running a grace period later is stopped,
and the summary says so. Logs go to ``RUNS/<model id>.log``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from accelir.models import zoo
from accelir.training.plan import TrainJob

POLL_SECONDS = 2.0
KILL_AFTER_TERM_SECONDS = 10.0


def threads_per_job(jobs: int, parallel: int, cores: int | None = None) -> int:
    """An equal share of the cores for each of the jobs that run at once (at least one)."""
    cores = cores if cores is not None else os.cpu_count() or 1
    return max(1, cores // max(1, min(jobs, parallel)))


def thread_env(threads: int) -> dict[str, str]:
    return {
        name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
    }


def job_argv(
    job: TrainJob,
    *,
    data: Path,
    runs: Path,
    weights_dir: Path,
    until: float,
    device: str,
    threads: int = 1,
    notes: tuple[str, ...] = (),
) -> list[str]:
    """The ``accelir train ir`` command line of one job."""
    argv = [
        sys.executable,
        "-m",
        "accelir.cli",
        "train",
        "ir",
        f"--model={job.model}",
        f"--task={job.task}",
        f"--width={job.width}",
        f"--steps={job.steps}",
        f"--batch={job.batch}",
        f"--patch={job.patch}",
        f"--lr={job.lr:g}",
        f"--variants={job.variants}",
        f"--refresh-every={job.refresh_every}",
        f"--until={until:.3f}",
        f"--data={data}",
        f"--runs={runs}",
        f"--weights-dir={weights_dir}",
        f"--device={device}",
        f"--threads={threads}",
        "--note=trained side by side with the other jobs of `accelir train zoo --parallel` "
        "on one device, until a common deadline",
        *(f"--note={note}" for note in notes),
    ]
    argv.append(f"--max-side={job.max_side}" if job.max_side else "--max-side=0")
    if job.init_from:
        argv.append(f"--init-from={zoo.model_id(*job.init_from)}")
    return argv


@dataclass
class Running:
    job: TrainJob
    process: subprocess.Popen[bytes]
    log: Path
    started: float
    stopped: bool = False


def _last_step(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").replace("\r", "\n").splitlines()
    except OSError:
        return ""
    steps = [line for line in lines if line.startswith("step ")]
    gains = [line.strip() for line in lines if "gain" in line]
    return " | ".join([*(steps[-1:]), *gains])


def _stop(run: Running) -> None:
    if run.process.poll() is None:
        run.stopped = True
        run.process.send_signal(signal.SIGTERM)


def run_parallel(
    jobs: list[TrainJob],
    *,
    parallel: int,
    minutes: float,
    grace_minutes: float,
    data: Path,
    runs: Path,
    weights_dir: Path,
    device: str = "auto",
    notes: tuple[str, ...] = (),
    console: Console | None = None,
) -> dict[str, int | None]:
    """Run ``jobs``, ``parallel`` at a time, training until ``minutes`` from now; returns each
    model id's exit code (``None``: stopped at the hard deadline)."""
    console = console or Console()
    runs.mkdir(parents=True, exist_ok=True)
    start = time.time()
    until = start + minutes * 60.0
    hard = until + grace_minutes * 60.0
    threads = threads_per_job(len(jobs), parallel)
    env = {**os.environ, **thread_env(threads)}
    console.print(
        f"{len(jobs)} jobs, {min(len(jobs), parallel)} at a time, {threads} CPU threads each"
    )
    pending = list(jobs)
    running: list[Running] = []
    done: dict[str, int | None] = {}
    while pending or running:
        while pending and len(running) < parallel and time.time() < until - 30:
            job = pending.pop(0)
            model = zoo.model_id(job.model, job.task, job.width)
            log = runs / f"{model}.log"
            argv = job_argv(
                job,
                data=data,
                runs=runs,
                weights_dir=weights_dir,
                until=until,
                device=device,
                threads=threads,
                notes=notes,
            )
            with log.open("wb") as sink:
                process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env)
            running.append(Running(job, process, log, time.time()))
            console.print(f"started {model} (pid {process.pid})")
        if pending and time.time() >= until - 30:
            for job in pending:
                done[zoo.model_id(job.model, job.task, job.width)] = None
                console.print(f"not started (deadline): {job}")
            pending = []
        time.sleep(POLL_SECONDS)
        now = time.time()
        for run in list(running):
            model = zoo.model_id(run.job.model, run.job.task, run.job.width)
            code = run.process.poll()
            if code is None and now >= hard:
                _stop(run)
                if now >= hard + KILL_AFTER_TERM_SECONDS:
                    run.process.kill()
                continue
            if code is not None:
                running.remove(run)
                done[model] = None if run.stopped else code
                console.print(
                    f"{model}: exit {code} after {(now - run.started) / 60:.1f} min  "
                    f"{_last_step(run.log)}"
                )
    console.print(_summary(jobs, done, runs))
    return done


def _summary(jobs: list[TrainJob], done: dict[str, int | None], runs: Path) -> Table:
    table = Table("model", "exit", "last progress line")
    for job in jobs:
        model = zoo.model_id(job.model, job.task, job.width)
        code = done.get(model)
        table.add_row(
            model, "stopped" if code is None else str(code), _last_step(runs / f"{model}.log")
        )
    return table
