"""One trial on several devices (issue 7): Lightning's DDP with spawned ranks, here 2 CPU
processes on the gloo backend.

The checks that start ranks compare a distributed run with a single-process one on the same
data and weights: a deterministic validation (the AE's pooled imputation, VAEAC's seeded
IWAE) must score the same, since validation chunks are dealt whole to the ranks and the
scores are summed over them. Each spawn costs a few seconds, so they are few and small.
"""

from __future__ import annotations

import copy
import os

import pytest
import torch

from helpers import correlated_dataset
from imputebench.data.datamodule import IndexBatches, PreparedDataModule, ValidationBatches, dealt_chunk
from imputebench.data.prepare import PreparedData, prepare
from imputebench.data.protocols import get_protocol
from imputebench.models.base import ImputerModule
from imputebench.models.distributed import STRATEGIES, Distribution, rank_seed
from imputebench.models.registry import get_model
from imputebench.models.training import trainer_for

DDP = Distribution(2, "ddp")
CPU = torch.device("cpu")
#: small budgets; eval_rows cuts the 32 validation rows into 3 chunks of 11 (2 draws for VAEAC),
#: so rank 0 scores chunks 0 and 2, rank 1 chunk 1 and a padding chunk
FAST = dict(max_epochs=3, patience=10, batch_size=32, n_imputations=2)
CHUNKED = {"ae": dict(eval_rows=11), "vaeac": dict(eval_rows=22, width=32, depth=2, latent_dim=8)}


@pytest.fixture(autouse=True)
def fresh_port():
    """Lightning leaves the first DDP run's ``MASTER_PORT`` in ``os.environ`` for every later run of the
    process, and something else (another test, another xdist worker) may take that port in between:
    each test's spawn finds a port free at that moment instead."""
    os.environ.pop("MASTER_PORT", None)
    yield
    os.environ.pop("MASTER_PORT", None)


@pytest.fixture(scope="module")
def data() -> PreparedData:
    return prepare(correlated_dataset(200, 0), get_protocol("vsae"), "mcar", 0.5, 0)


def untrained(name: str, data: PreparedData) -> ImputerModule:
    """``name`` with the networks a fit starts from, ready to validate."""
    return get_model(name)(seed=0, **FAST, **CHUNKED.get(name, {})).build_for(PreparedDataModule(data))


def validate(model: ImputerModule, data: PreparedData, distribution: Distribution) -> dict[str, float]:
    """The model's logged validation score on ``data``'s validation split under ``distribution``
    (from rank 0, for DDP: Lightning sends its logged metrics back to the main process), with
    the runner's trainer."""
    model.distribute(distribution)
    datamodule = PreparedDataModule(data)
    (logged,) = trainer_for(model, datamodule, max_epochs=1).trainer.validate(model, datamodule=datamodule, verbose=False)
    return logged


# --- the flags -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "devices, strategy, flag",
    [(0, "auto", "--devices"), (-1, "ddp", "--devices"), (1.5, "auto", "--devices"), (2, "fsdp", "--strategy"),
     (1, "ddp", "--devices >= 2"), (2, "auto", "--strategy ddp")],
)
def test_bad_distributions_name_the_flag(devices, strategy, flag):
    with pytest.raises(ValueError, match=flag):
        Distribution(devices, strategy)


def test_default_distribution_is_one_device_and_ddp_many():
    assert STRATEGIES == ("auto", "ddp")
    assert not Distribution().distributed and DDP.distributed
    single = Distribution().trainer_arguments(CPU, lambda: None)
    assert single == {"accelerator": "cpu", "devices": 1}
    spawned = DDP.trainer_arguments(CPU, lambda: None)
    assert spawned["devices"] == 2 and spawned["strategy"]._start_method == "spawn"
    assert spawned["strategy"]._process_group_backend == "gloo"


def test_adversarial_models_refuse_ddp():
    with pytest.raises(ValueError, match="adversarial.*--strategy ddp"):
        get_model("gain")(seed=0).distribute(DDP)


def test_rank_seeds_differ_by_rank_and_seed():
    seeds = {rank_seed(seed, rank) for seed in range(3) for rank in range(4)}
    assert len(seeds) == 12 and all(0 <= s < 2**63 for s in seeds)


# --- sharding, no processes ------------------------------------------------------------------------


def test_one_process_batches_are_the_seeded_permutation(data):
    """The single-process path is unchanged: batches are ``randperm(n)`` of the seeded generator, split."""
    batches = IndexBatches(data.train, 32, shuffle=True, seed=7, min_rows=2)
    generator = torch.Generator().manual_seed(7)
    for _ in range(2):  # two epochs: the generator moves on
        expected = [data.train.rows(idx) for idx in torch.randperm(data.train.n_rows, generator=generator).split(32)]
        got = list(batches)
        assert len(got) == len(batches) == len(expected)
        assert all(torch.equal(g[0], e[0]) and torch.equal(g[1], e[1]) for g, e in zip(got, expected))


@pytest.mark.parametrize("fill_last", [False, True])
def test_ranks_share_each_epoch_disjointly_in_equal_steps(data, fill_last):
    table = data.train  # 128 rows: 64 per rank
    batches = IndexBatches(table, 24, shuffle=True, seed=3, min_rows=2, fill_last=fill_last)
    ranks = [batches.shard(rank, 2, CPU) for rank in range(2)]
    single = [x for x, _ in copy.deepcopy(batches)]  # the same generator state: the same epoch order
    assert len(ranks[0]) == len(ranks[1]) == 3  # 64 rows per rank: 24 + 24 + 16 (or topped up to 24)
    epoch = [list(rank) for rank in ranks]
    assert [len(steps) for steps in epoch] == [3, 3]
    shares = [torch.cat([x for x, _ in steps])[:64] for steps in epoch]  # (64, D) each
    # the two shares hold every row of the table once
    assert sorted(map(tuple, torch.cat(shares).tolist())) == sorted(map(tuple, table.x.tolist()))
    if not fill_last:  # dealt row by row from the single-process order
        order = torch.cat(single)
        assert torch.equal(shares[0], order[0::2]) and torch.equal(shares[1], order[1::2])


def test_sharding_pads_an_odd_table_from_the_epoch_start(data):
    table = data.validation.table  # 32 rows; take 31 for an odd count
    odd = IndexBatches(table, 100, shuffle=False)
    odd.table = table.subset(slice(0, 31))
    first, second = (next(iter(odd.shard(rank, 2, CPU)))[0] for rank in range(2))
    assert first.shape[0] == second.shape[0] == 16
    assert torch.equal(second[-1], first[0])  # row 0 dealt again to fill rank 1's share


def test_validation_chunks_are_dealt_whole_with_padding(data):
    whole = list(ValidationBatches(data.validation, 11))  # chunks of 11, 11, 10 rows
    ranks = [list(ValidationBatches(data.validation, 11).shard(rank, 2, CPU)) for rank in range(2)]
    assert [[len(x) for x, _, _ in chunks] for chunks in ranks] == [[11, 10], [11, 0]]
    for rank, chunks in enumerate(ranks):
        for local, chunk in enumerate(chunks):
            index = dealt_chunk(local, rank, 2)
            if index < len(whole):
                assert all(torch.equal(a, b) for a, b in zip(chunk, whole[index]))


# --- ranks: 2 spawned CPU processes on gloo ---------------------------------------------------------


def test_selection_error_under_ddp_equals_one_process(data):
    """The AE imputes deterministically: its pooled validation error on the same weights must not
    depend on how many processes scored the chunks (torchmetrics sums error and count over ranks)."""
    model = untrained("ae", data)
    single = validate(model, data, Distribution())["val_error"]
    distributed = validate(model, data, DDP)["val_error"]
    assert single > 0
    assert distributed == pytest.approx(single, abs=1e-6)


def test_vaeac_validation_iwae_under_ddp_equals_one_process(data):
    """VAEAC's IWAE sum and row count are summed over ranks, its masks seeded per single-process chunk."""
    model = untrained("vaeac", data)
    single = validate(model, data, Distribution())["val_iwae"]
    distributed = validate(model, data, DDP)["val_iwae"]
    assert single == pytest.approx(validate(model, data, Distribution())["val_iwae"], abs=0)  # seeded
    assert distributed == pytest.approx(single, rel=1e-6)


def test_ddp_fit_returns_the_best_epoch_and_its_weights(data):
    """A DDP fit comes back with rank 0's best weights and the fit's history: validated again in
    this process, the returned AE scores its best epoch's validation error."""
    model = get_model("ae")(seed=0, **FAST, **CHUNKED["ae"]).distribute(DDP)
    initial = {k: v.clone() for k, v in model.build_networks(data.train.schema).state_dict().items()}
    model.fit(data.train, data.validation)
    history, summary = model.epoch_history(), model.training_summary()
    assert summary["epochs"] == FAST["max_epochs"] == len(history)
    assert [entry["epoch"] for entry in history] == list(range(summary["epochs"]))
    scores = [entry["val_error"] for entry in history]
    assert summary["best_epoch"] == scores.index(min(scores)) and model.last_fit.best_score == min(scores)
    assert any(not torch.equal(v, initial[k]) for k, v in model.state_dict().items())  # trained weights came back
    again = validate(model, data, Distribution())["val_error"]
    assert again == pytest.approx(model.last_fit.best_score, abs=1e-6)


def test_ddp_fit_of_a_vae_imputes_in_the_main_process(data):
    model = get_model("vae")(seed=0, **FAST).distribute(DDP).fit(data.train, data.validation)
    table = data.test
    imputed = model.impute(table)
    assert imputed.shape == table.x.shape and torch.isfinite(imputed).all()
    assert torch.equal(imputed[table.observed], table.x[table.observed])
    assert torch.equal(model.impute(table), imputed)  # seeded imputation, as a single-device model's
    history = model.epoch_history()
    assert model.training_summary() == {"epochs": len(history), "best_epoch": model.last_fit.best_epoch}
    assert all(set(entry) == {"epoch", "train_loss", "train_rec", "train_kl", "val_error"} for entry in history)
    assert model.last_fit.best_score == min(entry["val_error"] for entry in history)


def test_run_trains_a_trial_with_ddp_on_two_processes_and_says_so_in_its_row(tmp_path, mirror_dir):
    from typer.testing import CliRunner

    from imputebench.cli import app
    from imputebench.runner.store import ResultStore

    store = tmp_path / "r.sqlite"
    result = CliRunner().invoke(app, ["run", "--models", "vae,mean", "--datasets", "iris", "--max-epochs", "2",
                                      "--devices", "2", "--strategy", "ddp", "--store", str(store),
                                      "--data-dir", str(mirror_dir)])
    assert result.exit_code == 0, result.output
    with ResultStore(store) as results:
        rows = results.frame().set_index("model")
    assert (rows["status"] == "ok").all()
    assert rows.loc["vae", "hardware"].endswith("DDP on 2 devices") and "DDP" not in rows.loc["mean", "hardware"]
    assert rows.loc["vae", "metric.epochs"] == 2


@pytest.mark.parametrize("options, message", [
    (["--models", "vae", "--devices", "2"], "needs --strategy ddp"),
    (["--models", "vae", "--strategy", "ddp"], "needs --devices >= 2"),
    (["--models", "gain", "--devices", "2", "--strategy", "ddp"], "cannot train with --strategy ddp"),
])
def test_run_refuses_a_distribution_it_cannot_honour(tmp_path, options, message):
    from typer.testing import CliRunner

    from imputebench.cli import app

    result = CliRunner().invoke(app, ["run", "--datasets", "iris", "--store", str(tmp_path / "r.sqlite"), *options])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
