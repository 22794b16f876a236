"""One trial on several devices: Lightning's DDP, with ranks started by ``spawn``.

``Distribution(devices, strategy)`` is what ``--devices N --strategy ddp`` asks for; an
:class:`~imputebench.models.base.ImputerModule` takes it with ``distribute`` before ``fit``.

Why ``spawn``: Lightning's plain ``"ddp"`` launcher starts every rank by re-executing the
whole command line (``sys.argv``), which for the sweep runner would rerun the whole sweep in
every rank. The spawn launcher starts processes that run only ``trainer.fit``: the module,
its tables and the trainer are pickled to them, and rank 0's weights come back to the main
process when the ranks join. What the fit's callbacks and loggers hold (the best epoch and
its score, the epoch history) travels back the same way, through :class:`ResultsLauncher`.

How a distributed fit differs from a single-process one, by design:

* every rank takes a disjoint share of each epoch's shuffled rows (``IndexBatches.shard``)
  and steps on ``batch_size`` of them at a time, so one optimiser step averages the gradients
  of ``devices x batch_size`` rows: the effective batch is ``devices`` times larger and an
  epoch has about ``1 / devices`` as many steps. The learning rate is not rescaled;
* each rank draws its own training noise, seeded from the model's seed and its rank, so the
  noise (unlike the shuffling) does not reproduce a single-process fit's;
* validation chunks are dealt whole to the ranks (``ValidationBatches.shard``) and the
  selection metric is summed over ranks, so a deterministic validation (the AE's, VAEAC's
  seeded IWAE) scores exactly what one process scores on the same weights.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from lightning.pytorch.strategies import DDPStrategy
from lightning_utilities.core.apply_func import apply_to_collection
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher

#: values of ``--strategy``: ``auto`` is one process on one device, ``ddp`` one process per device
STRATEGIES = ("auto", "ddp")


@dataclass(frozen=True)
class Distribution:
    """How many devices train one trial, and how (``--devices``, ``--strategy``).

    ``auto`` trains on one device, ``ddp`` on two or more: Lightning's ``auto`` on several
    devices would pick the re-executing ``ddp`` launcher, and ``ddp`` on one device would
    only add a spawned process, so both mismatches are refused rather than reinterpreted.
    """

    devices: int = 1
    strategy: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.devices, bool) or not isinstance(self.devices, int) or self.devices < 1:
            raise ValueError(f"--devices must be a whole number >= 1, got {self.devices!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.strategy == "ddp" and self.devices < 2:
            raise ValueError(f"--strategy ddp trains on several devices: it needs --devices >= 2, got {self.devices}")
        if self.strategy == "auto" and self.devices > 1:
            raise ValueError(f"--devices {self.devices} needs --strategy ddp (auto trains on one device)")

    @property
    def distributed(self) -> bool:
        return self.strategy == "ddp"

    def trainer_arguments(self, device: torch.device, rank_context: Callable[[], AbstractContextManager]) -> dict:
        """``accelerator``, ``devices`` and ``strategy`` of the ``L.Trainer`` for data on ``device``.

        One device: the data's own (its CUDA index). DDP: the first ``devices`` devices of
        the data's kind, each rank running inside ``rank_context()`` (a fresh process does not
        inherit the main process's logging settings).
        """
        accelerator = "gpu" if device.type == "cuda" else device.type
        if not self.distributed:
            return {"accelerator": accelerator, "devices": [device.index or 0] if device.type == "cuda" else 1}
        backend = "nccl" if device.type == "cuda" else "gloo"
        strategy = SpawnDDPStrategy(rank_context, process_group_backend=backend)
        return {"accelerator": accelerator, "devices": self.devices, "strategy": strategy}


def rank_seed(seed: int, rank: int) -> int:
    """The seed of ``rank``'s random stream in a fit seeded ``seed``: distinct per rank (ranks
    drawing the same noise for different rows would correlate them), and unlike ``seed + rank``
    not the stream of another seed's rank."""
    return int(np.random.SeedSequence((seed, rank)).generate_state(1, np.uint64)[0] >> 1)


class Stateful(Protocol):
    """A callback or logger whose state the main process needs back from rank 0."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.cpu().numpy()


def _stateful(trainer: Any) -> list[Stateful]:
    """The trainer's callbacks and loggers that carry state (in the same order in every process)."""
    return [part for part in [*trainer.callbacks, *trainer.loggers] if hasattr(part, "load_state_dict")]


@dataclass(frozen=True)
class _InRank:
    """``function`` run in a spawned rank inside ``context()``; an exception of one of the types
    in ``carried`` is returned as :class:`_Raised` rather than raised, to be re-raised in the main
    process with its type (a rank that raises reaches the main process as a traceback string only).
    Only exceptions that every rank raises at the same point may be carried: a rank that returned
    early would leave the others waiting in their next collective."""

    function: Callable
    context: Callable[[], AbstractContextManager]
    carried: tuple[type[BaseException], ...]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.context():
            try:
                return self.function(*args, **kwargs)
            except self.carried as error:
                return _Raised(error)


@dataclass(frozen=True)
class _Raised:
    error: BaseException


class ResultsLauncher(_MultiProcessingLauncher):
    """Lightning's spawn launcher, also bringing back rank 0's callback and logger states (Lightning
    brings back its weights and ``callback_metrics`` only) and re-raising the carried exceptions
    of :class:`_InRank` in the main process. The module's networks are built before the ranks are
    spawned (:func:`~imputebench.models.training.trainer_for`), so rank 0's weights load into them."""

    def __init__(self, strategy: SpawnDDPStrategy, context: Callable[[], AbstractContextManager]) -> None:
        super().__init__(strategy, start_method="spawn")
        self._context = context

    def launch(self, function: Callable, *args: Any, trainer: Any = None, **kwargs: Any) -> Any:
        carried = getattr(trainer.lightning_module, "carried_errors", ()) if trainer is not None else ()
        result = super().launch(_InRank(function, self._context, carried), *args, trainer=trainer, **kwargs)
        if isinstance(result, _Raised):
            raise result.error
        return result

    def get_extra_results(self, trainer: Any) -> dict[str, Any]:
        extra = super().get_extra_results(trainer)
        # as numpy, as Lightning sends its metrics: a tensor would reach the main process as a handle
        # into this rank's memory, which is gone once the rank has exited (EarlyStopping's best score)
        extra["states"] = apply_to_collection([part.state_dict() for part in _stateful(trainer)], torch.Tensor, _to_numpy)
        return extra

    def update_main_process_results(self, trainer: Any, extra: dict[str, Any]) -> None:
        super().update_main_process_results(trainer, extra)
        for part, state in zip(_stateful(trainer), extra["states"]):
            part.load_state_dict(apply_to_collection(state, np.ndarray, torch.from_numpy))


class SpawnDDPStrategy(DDPStrategy):
    """DDP with spawned ranks (see the module's docstring), each rank given its share of the
    batch iterables Lightning hands the strategy (Lightning shards ``DataLoader``s only, by
    adding a distributed sampler; ours are index iterables over tables already on the device)."""

    def __init__(self, rank_context: Callable[[], AbstractContextManager], **kwargs: Any) -> None:
        super().__init__(start_method="spawn", **kwargs)
        self._rank_context = rank_context

    def _configure_launcher(self) -> None:
        self._launcher = ResultsLauncher(self, self._rank_context)

    def process_dataloader(self, dataloader: object) -> object:
        dataloader = super().process_dataloader(dataloader)
        if hasattr(dataloader, "shard"):  # IndexBatches, ValidationBatches
            return dataloader.shard(self.global_rank, self.world_size, self.root_device)
        return dataloader

    def on_validation_start(self) -> None:
        """Validate rank 0's model on every rank, the one that returns to the main process. DDP
        broadcasts rank 0's buffers before each training forward, so each rank's last step has
        moved its own batch-norm running statistics apart by the time validation starts."""
        super().on_validation_start()
        for buffer in self.lightning_module.buffers():
            if buffer.is_floating_point():
                torch.distributed.broadcast(buffer, src=0)
