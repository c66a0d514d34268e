"""`ladder train --nproc N`: start N training workers through PyTorch's elastic launcher.

The launcher is torchrun itself (`python -m torch.distributed.run`); each worker runs
`ladder train` again with the torchrun environment set, and the trainer joins the process group.
Everything a user can get wrong is checked here first, so mistakes give one clear line instead
of a worker's traceback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass

from ladder.errors import LadderError

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


@dataclass(frozen=True)
class LaunchPlan:
    """Where and how many workers run: nproc per node, nodes, this node's rank, rendezvous."""

    nproc: int
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None


def max_workers(device: str) -> int:
    """The most workers one node may run: one per GPU on CUDA, one per core on CPU."""
    if device == "cuda":
        import torch

        return torch.cuda.device_count()
    return os.cpu_count() or 1


def check_plan(plan: LaunchPlan, device: str) -> None:
    """Raise LadderError for a plan that cannot start (worker count, ranks, rendezvous port)."""
    limit = max_workers(device)
    if not 1 <= plan.nproc <= limit:
        what = "GPUs" if device == "cuda" else "CPU cores"
        raise LadderError(f"--nproc {plan.nproc}: expected 1 to {limit} (this machine's {what})")
    if plan.nnodes < 1 or not 0 <= plan.node_rank < plan.nnodes:
        raise LadderError(
            f"--node-rank {plan.node_rank} with --nnodes {plan.nnodes}: "
            "expected 0 <= node rank < nodes"
        )
    if plan.nnodes > 1 and plan.rdzv_endpoint is None:
        raise LadderError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the same on every node)")
    if plan.rdzv_endpoint is not None:
        host, port = _split_endpoint(plan.rdzv_endpoint)
        if plan.node_rank == 0 and host in LOCAL_HOSTS | {socket.gethostname()}:
            _check_port_free(host, port, plan.rdzv_endpoint)


def _split_endpoint(endpoint: str) -> tuple[str, int]:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LadderError(f"--rdzv-endpoint {endpoint!r}: expected HOST:PORT, e.g. 10.0.0.1:29500")
    return host.strip("[]"), int(port)


def _check_port_free(host: str, port: int, endpoint: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise LadderError(
                f"--rdzv-endpoint {endpoint}: port {port} is already in use on this machine "
                f"({exc.strerror}); pick a free port"
            ) from exc


def torchrun_command(plan: LaunchPlan, worker_args: list[str], run_id: str) -> list[str]:
    """The `python -m torch.distributed.run ...` command line that starts the workers."""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={plan.nproc}"]
    if plan.rdzv_endpoint is None:
        command.append("--standalone")  # one node: a private rendezvous on a free local port
    else:
        command += [
            f"--nnodes={plan.nnodes}",
            f"--node-rank={plan.node_rank}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={plan.rdzv_endpoint}",
            f"--rdzv-id={run_id}",
        ]
    return [*command, "-m", "ladder.cli", *worker_args]


def launch(plan: LaunchPlan, worker_args: list[str], run_id: str, device: str) -> int:
    """Check the plan, run torchrun with the workers' `ladder` arguments, return its exit code."""
    check_plan(plan, device)
    # one thread per worker unless the user says otherwise (torchrun's own default, unwarned)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run(torchrun_command(plan, worker_args, run_id), env=env, check=False)
    return done.returncode
