"""The Ray executor on a local cluster with declared (fake) GPUs: scheduling, CUDA_VISIBLE_DEVICES,
fractional packing, CPU-only classical trials, the driver's kill of an overstaying task, and rows
identical to the local executor's. One cluster for the module: Ray starts in seconds, and each worker
process imports torch and Lightning once (seconds each), so the tests share workers: Ray keeps GPU tasks'
apart from CPU-only ones, the GPU tests reuse the quarter test's four, the CPU-only tests two of 2 CPUs,
and the test that kills a worker comes last.

Nothing here depends on how fast the machine is: trials said to run "at once" meet at a rendezvous
(each waits until all have started, with a generous limit) instead of comparing clocks, and the
driver's kill is proven by the row's status (the hung trial would otherwise sleep for a minute).
The module holds one Ray cluster: under pytest-xdist its tests stay in one worker (--dist loadfile, or
loadgroup by its mark)."""

from __future__ import annotations

import functools
import os
import sys
import time
from collections import deque
from pathlib import Path

import pytest
from helpers import correlated_dataset

from imputebench.runner.execute import run_sweep
from imputebench.runner.executors import Job, LocalExecutor, RayExecutor
from imputebench.runner.store import ResultRow, ResultStore
from imputebench.runner.trials import Trial, expand
from imputebench.runner.worker import TrialOptions, execute

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.xdist_group("ray")
FAKE_GPUS, CPUS = 2, 4
DATA = {"toy": correlated_dataset(200)}
#: how long a task waits at a rendezvous for the others to start: only a scheduling fault should reach
#: it. With two busy loops and a second test session on the 2-core machine, this test took 210 s in
#: all (mostly starting four fresh Ray workers that import torch and Lightning), so 300 s was too close.
RENDEZVOUS_LIMIT_S = 900.0


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """A local cluster with 2 declared GPUs on this CPU machine (Ray's GPUs are logical resources)."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv("CUDA_VISIBLE_DEVICES", raising=False)  # Ray refuses fake GPUs beyond a set variable
        # Ray starts its workers at nice 15: beside two busy processes on 2 cores they waited minutes for a
        # CPU (about 3 min per scheduling test). At the tests' own priority they only wait their turn.
        env.setenv("RAY_worker_niceness", "0")
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the probes below run in workers
        ray.init(address="local", num_cpus=CPUS, num_gpus=FAKE_GPUS, include_dashboard=False, log_to_driver=False)
        yield
        ray.shutdown()


def rendezvous(folder: Path, parties: int, name: str) -> None:
    """Wait until ``parties`` tasks have arrived in ``folder``, each leaving a file named for itself there:
    none of them returns before all have started, so they ran at one moment together."""
    (folder / name).touch()
    deadline = time.monotonic() + RENDEZVOUS_LIMIT_S
    while (arrived := len(list(folder.iterdir()))) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{arrived} of {parties} tasks started within {RENDEZVOUS_LIMIT_S:g} s")
        time.sleep(0.05)


def probe(trial: Trial, attempt: int, dataset, options: TrialOptions, meeting: Path | None = None, parties: int = 1) -> ResultRow:
    """Stands for a trial: records the device and GPUs the worker was given, after meeting the other
    ``parties - 1`` trials at ``meeting`` (if given)."""
    if meeting is not None:
        rendezvous(meeting, parties, f"{trial.key}-{attempt}")
    return ResultRow(trial, "ok", None, hardware=options.device, attempt=attempt,
                     metrics={"gpus": os.environ.get("CUDA_VISIBLE_DEVICES", "")})


def hang(trial: Trial, attempt: int, dataset, options: TrialOptions) -> ResultRow:
    """A trial stuck where its own alarm cannot reach it (the alarm is ignored)."""
    import signal

    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    time.sleep(60)
    return ResultRow(trial, "ok", None)


def run_probes(models: list[str], gpus_per_trial: float, work=probe, cpus_per_trial: float = 1.0, **options) -> list[ResultRow]:
    executor = RayExecutor(TrialOptions(**options), cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, work=work)
    queue = deque(Job(Trial(model, "toy", "mcar", 0.5, seed, "vsae"), 1) for seed, model in enumerate(models))
    rows = [row for _, row in executor.run(queue, lambda job: None)]
    executor.close()
    return rows


def run_together(models: list[str], gpus_per_trial: float, meeting: Path) -> list[ResultRow]:
    """Probes that all meet in the folder ``meeting`` before any returns: all are ok only if they ran at once."""
    rows = run_probes(models, gpus_per_trial, work=functools.partial(probe, meeting=meeting, parties=len(models)))
    assert [r.status for r in rows] == ["ok"] * len(models), [r.reason for r in rows]
    return rows


def test_quarter_gpus_pack_four_trials_onto_the_first_gpu_at_once(tmp_path):
    rows = run_together(["vae"] * 4, gpus_per_trial=0.25, meeting=tmp_path)
    assert [r.metrics["gpus"] for r in rows] == ["0"] * 4


def test_whole_gpus_go_one_per_trial_and_each_trial_sees_only_its_own(tmp_path):
    rows = run_together(["vae"] * FAKE_GPUS, gpus_per_trial=1, meeting=tmp_path)
    assert sorted(r.metrics["gpus"] for r in rows) == ["0", "1"]  # at once, on different GPUs
    assert {r.hardware for r in rows} == {"cuda"}


def test_classical_baselines_run_as_cpu_only_trials():
    rows = run_probes(["mean", "mice"], gpus_per_trial=1, cpus_per_trial=2)  # 2 CPUs each: the workers the next tests reuse
    assert [r.metrics["gpus"] for r in rows] == ["", ""] and {r.hardware for r in rows} == {"cpu"}


def test_ray_rows_equal_local_rows_for_the_same_seeds(tmp_path):
    trials = expand(["mean", "vae"], ["toy"], ["mcar"], [0.5], [0, 1], "vsae",
                    lambda model, dataset: {"max_epochs": 2} if model == "vae" else {})
    frames = {}
    for name in ("local", "ray"):
        options = TrialOptions()
        executor = LocalExecutor(options, DATA) if name == "local" else RayExecutor(options, DATA, cpus_per_trial=2)
        with ResultStore(tmp_path / f"{name}.sqlite") as store:
            summary = run_sweep(trials, store, executor=executor)
            frames[name] = store.frame().sort_values("config_hash").reset_index(drop=True)
        executor.close()
        assert summary.ok == len(trials)
    columns = ["config_hash", "status", "metric.nrmse", "metric.pfc", "mask_hash", "hardware"]
    assert frames["ray"][columns].equals(frames["local"][columns])


def train_until_heard(trial: Trial, attempt: int, dataset, options: TrialOptions, heard: Path) -> ResultRow:
    """The trial, which then waits (in the worker) until the driver has heard of its last epoch: reports of
    an attempt that has ended are dropped, and this one would end long before the driver polls."""
    row = execute(trial, attempt, dataset, options)
    deadline = time.monotonic() + RENDEZVOUS_LIMIT_S
    while not heard.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return row


def test_a_ray_trials_epochs_reach_on_epoch(tmp_path):
    trial = Trial("vae", "toy", "mcar", 0.5, 0, "vsae", {"max_epochs": 3, "patience": 3})
    heard = []

    def on_epoch(job: Job, epoch: int, max_epochs: int) -> None:
        heard.append((job, epoch, max_epochs))
        if epoch == max_epochs:
            (tmp_path / "heard").touch()

    work = functools.partial(train_until_heard, heard=tmp_path / "heard")
    executor = RayExecutor(TrialOptions(), DATA, cpus_per_trial=2, work=work)  # 2 CPUs: the CPU-only tests' workers
    rows = [row for _, row in executor.run(deque([Job(trial, 1)]), lambda job: None, on_epoch)]
    executor.close()
    assert [row.status for row in rows] == ["ok"], [row.reason for row in rows]
    assert {(job, max_epochs) for job, _, max_epochs in heard} == {(Job(trial, 1), 3)}
    epochs = [epoch for _, epoch, _ in heard]  # a worker posts at most twice a second, and always the last epoch
    assert epochs[0] == 1 and epochs[-1] == 3 and epochs == sorted(set(epochs))


def test_the_driver_kills_a_trial_that_overstays_its_timeout(monkeypatch):
    import imputebench.runner.executors as executors

    monkeypatch.setattr(executors, "KILL_GRACE_S", 0.5)
    (row,) = run_probes(["mean"], gpus_per_trial=0, work=hang, cpus_per_trial=2, timeout_s=0.5)
    assert row.status == "timeout" and "killed by the driver" in row.reason  # not "ok", a minute later


def test_without_ray_the_executor_says_how_to_install_it(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from imputebench.cli import app

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    result = CliRunner().invoke(app, ["run", "--models", "mean", "--datasets", "iris", "--executor", "ray",
                                      "--store", str(tmp_path / "r.sqlite")])
    assert result.exit_code == 2 and "pip install 'imputebench[ray]'" in result.output
