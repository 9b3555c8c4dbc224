"""--device: the learner on the CPU or a GPU; no test needs a GPU (``cuda`` is checked without one)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from pglab.core.device import resolve_device
from pglab.core.rollout import RolloutBuffer
from tests.helpers import read_json, read_metrics

TINY = ("--total-steps", "512", "--wandb-mode", "disabled", "--no-progress")


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_is_the_cpu_without_a_gpu(no_gpu):
    assert resolve_device("auto") == torch.device("cpu") == resolve_device("cpu")


def test_train_on_the_cpu_records_the_learner_device(tmp_path: Path, run_cli, no_gpu):
    code, _, err = run_cli("train", "--device", "auto", "--run-dir", str(tmp_path / "r"), *TINY)
    assert code == 0, err
    config = read_json(tmp_path / "r" / "config.json")
    assert config["device"] == "auto" and config["learner_device"] == "cpu"


GRADS = ("--env", "pglab/DelayedChain-v0", "--samples", "4", "--warmup", "1", "--batch-episodes", "2")


@pytest.mark.parametrize(
    "command",
    [
        ("train", *TINY, "--run-dir"),
        ("compare", *TINY, "--agents", "reinforce", "--envs", "CartPole-v1", "--out"),
        ("grads", *GRADS, "--agents", "reinforce", "--out"),
    ],
)
def test_cuda_without_a_gpu_is_one_line(tmp_path: Path, run_cli, no_gpu, command):
    code, _, err = run_cli(*command, str(tmp_path / "r"), "--device", "cuda")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --device cuda: torch ") and "use --device cpu" in lines[0]
    assert not (tmp_path / "r").exists()


def test_train_compare_and_grads_offer_the_devices_of_pglab_core_device():
    from pglab.cli import DEVICE_CHOICES, cli
    from pglab.core.device import DEVICES

    assert DEVICE_CHOICES == DEVICES
    for name in ("train", "compare", "grads"):
        (option,) = [p for p in cli.commands[name].params if p.name == "device"]
        assert tuple(option.type.choices) == DEVICES, name


def test_grads_through_the_device_path_gives_the_numbers_of_the_default(tmp_path: Path, monkeypatch, no_gpu):
    """pglab grads on a device: agents act through DeviceActor and differentiate copied batches, the
    oracle critic moves with them, and the exact reference stays a CPU float64 computation. With the
    device "cpu:0" that path runs here without a GPU and must change no number; `--device cpu` neither."""
    from pglab.core.device import DeviceActor
    from pglab.diagnostics import grads

    devices: list[str] = []

    def measure(name: str, **options) -> tuple[dict, list[dict]]:
        config = grads.GradsConfig(
            env="pglab/DelayedChain-v0", agents=("reinforce-value", "gumbel-st"), samples=4, warmup=1,
            batch_episodes=2, critic="oracle", out=str(tmp_path / name), **options,
        )  # fmt: skip
        report = grads.run_grads(config)
        devices.append(report["device"])
        rows = [{k: v for k, v in row.items() if not k.endswith("_ms") and k != "wall_ms_per_estimate"}
                for row in report["estimators"]]  # fmt: skip
        return report["reference"], rows

    default = measure("default")
    large_batch = measure("large-default", reference="large-batch", reference_samples=3)
    assert measure("cpu", device="cpu") == default
    calls = []
    act = DeviceActor.act
    monkeypatch.setattr(DeviceActor, "act", lambda self, features: calls.append(1) or act(self, features))
    monkeypatch.setattr(grads, "resolve_device", lambda name: torch.device("cpu", 0))
    assert measure("device") == default
    assert calls  # the estimates were drawn through the device path
    assert measure("large-device", reference="large-batch", reference_samples=3) == large_batch
    assert devices == ["cpu", "cpu", "cpu", "cpu:0", "cpu:0"]  # grads.json says where the estimates ran


def test_a_batch_already_on_the_device_is_not_copied():
    batch = RolloutBuffer.allocate(2, 3, (4,))
    assert batch.to(torch.device("cpu")) is batch


def test_the_device_path_gives_the_numbers_of_the_plain_cpu_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A learner on another device acts through DeviceActor and updates on copied batches; with the
    device "cpu:0" that path runs here without a GPU and must change no number."""
    import pglab
    from pglab.core.device import DeviceActor

    def run(name: str) -> list[dict]:
        pglab.train(agent="gumbel-st", env="CartPole-v1", total_steps=1024, run_dir=str(tmp_path / name),
                    wandb_mode="disabled", progress=False, overrides={"num_steps": 32})  # fmt: skip
        return [{k: v for k, v in row.items() if k != "charts/SPS"} for row in read_metrics(tmp_path / name)]

    plain = run("plain")
    calls = []
    act = DeviceActor.act
    monkeypatch.setattr(DeviceActor, "act", lambda self, features: calls.append(1) or act(self, features))
    train_module = sys.modules["pglab.core.train"]  # `pglab.core.train` the attribute is the function
    monkeypatch.setattr(train_module, "resolve_device", lambda name: torch.device("cpu", 0))
    assert run("other") == plain
    num_envs = read_json(tmp_path / "other" / "config.json")["num_envs"]  # the preset's (16 since issue 12)
    assert len(calls) == 1024 // num_envs  # every vector step acted through the device path
