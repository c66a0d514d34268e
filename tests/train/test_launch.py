"""The torchrun launcher: plans are checked before any worker starts."""

from __future__ import annotations

import socket
import sys

import pytest

from ladder.errors import LadderError
from ladder.train.launch import LaunchPlan, check_plan, max_workers, torchrun_command


@pytest.mark.parametrize("nproc", [0, -1, 10_000])
def test_worker_count_must_fit_the_machine(nproc):
    with pytest.raises(LadderError, match=f"--nproc {nproc}: expected 1 to {max_workers('cpu')}"):
        check_plan(LaunchPlan(nproc), "cpu")


def test_node_rank_must_be_below_the_node_count():
    with pytest.raises(LadderError, match="expected 0 <= node rank < nodes"):
        check_plan(LaunchPlan(1, nnodes=2, node_rank=2, rdzv_endpoint="10.0.0.1:29500"), "cpu")


def test_several_nodes_need_a_rendezvous_endpoint():
    with pytest.raises(LadderError, match="needs --rdzv-endpoint"):
        check_plan(LaunchPlan(1, nnodes=2), "cpu")


@pytest.mark.parametrize("endpoint", ["nohost", ":29500", "host:port", "host:70000"])
def test_malformed_endpoint(endpoint):
    with pytest.raises(LadderError, match="expected HOST:PORT"):
        check_plan(LaunchPlan(1, rdzv_endpoint=endpoint), "cpu")


def test_a_busy_rendezvous_port_is_named():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LadderError, match=f"port {port} is already in use"):
            check_plan(LaunchPlan(1, rdzv_endpoint=f"127.0.0.1:{port}"), "cpu")


def test_single_node_uses_a_standalone_rendezvous():
    command = torchrun_command(LaunchPlan(2), ["train", "c.yaml", "--model", "m"], "run")
    assert command[:4] == [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2"]
    assert "--standalone" in command
    assert command[-6:] == ["-m", "ladder.cli", "train", "c.yaml", "--model", "m"]


def test_multi_node_passes_the_rendezvous_through():
    plan = LaunchPlan(4, nnodes=2, node_rank=1, rdzv_endpoint="10.0.0.1:29500")
    command = torchrun_command(plan, ["train"], "ladder-run")
    for flag in (
        "--nnodes=2",
        "--node-rank=1",
        "--rdzv-backend=c10d",
        "--rdzv-endpoint=10.0.0.1:29500",
        "--rdzv-id=ladder-run",
    ):
        assert flag in command
    assert "--standalone" not in command
