"""A portable Beam cluster on loopback: one job service and N external SDK worker pools.

This is the smallest honest stand-in for Flink, Spark or Dataflow: the pipeline is submitted
through the Job API by `PortableRunner`, and its code runs in separate SDK worker processes that
talk to the runner over the Fn API (gRPC), exactly as on a real cluster. Anything that only works
in one process (state in driver memory, local-disk side channels, unpicklable DoFns) fails here.

Topology (all processes started here, all killed by `close()`):

    PortableRunner --Job API--> job service (deploy.local_job_service)
                                     | StartWorker (round-robin through a small dispatcher)
                         worker pool 1 ... worker pool N   (apache_beam worker_pool_main)
                                     | each spawns SDK workers through replaymill.deploy.worker_boot, which
                                     | (like the SDK image's boot) applies the job's options

Beam's runner asks one endpoint for workers, so a dispatcher in this process forwards each
`StartWorker` to the pools in turn: with `--direct_num_workers=N` every pool runs one worker.

    python -m deploy.local_cluster --pools 2    # prints the pipeline options, serves until Ctrl-C
"""
from __future__ import annotations

import argparse
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port on loopback that is free right now (the worker pool CLI cannot report a port it picked)."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def child_env() -> dict[str, str]:
    """Environment for pools and workers: this interpreter first on PATH (a pool spawns workers as
    plain `python`), and the repository importable so pickled DoFns resolve their modules."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def wait_for_grpc(address: str, proc: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT_S) -> None:
    """Block until a gRPC server answers at `address`; fail with the child's log if it died first."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[2]} exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
            try:
                grpc.channel_ready_future(channel).result(timeout=0.25)
                return
            except grpc.FutureTimeoutError:
                continue
    raise TimeoutError(f"nothing listening at {address} after {timeout:.0f}s; see {log}")


class RoundRobinWorkerPools(beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolServicer):
    """Forwards the runner's StartWorker/StopWorker calls to several worker pools in turn."""

    def __init__(self, pool_addresses: list[str]):
        self._channels = {a: grpc.insecure_channel(a) for a in pool_addresses}
        self._next = itertools.cycle(pool_addresses)
        self._owner: dict[str, str] = {}
        self._lock = threading.Lock()
        self.started: dict[str, int] = {a: 0 for a in pool_addresses}

    def _stub(self, address: str) -> beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolStub:
        return beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolStub(self._channels[address])

    def StartWorker(self, request, context):
        with self._lock:
            address = next(self._next)
            self._owner[request.worker_id] = address
            self.started[address] += 1
        return self._stub(address).StartWorker(request)

    def StopWorker(self, request, context):
        with self._lock:
            address = self._owner.pop(request.worker_id, None)
        if address is None:
            return beam_fn_api_pb2.StopWorkerResponse()
        return self._stub(address).StopWorker(request)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()


class LocalPortableCluster:
    """Context manager that starts the job service and `pools` external worker pools, and always stops them."""

    def __init__(self, pools: int = 2, workdir: str | None = None):
        if pools < 1:
            raise ValueError("pools must be >= 1")
        self.pools = pools
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="replaymill-cluster-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._procs: list[subprocess.Popen] = []
        self._server: grpc.Server | None = None
        self.dispatcher: RoundRobinWorkerPools | None = None
        self.job_endpoint = ""
        self.worker_endpoint = ""

    def _spawn(self, name: str, args: list[str]) -> tuple[subprocess.Popen, Path]:
        log = self.workdir / f"{name}.log"
        with open(log, "w") as f:
            # A new session per child, so close() can end a pool together with the workers it spawned.
            proc = subprocess.Popen([sys.executable, "-m", *args], stdout=f, stderr=subprocess.STDOUT,
                                    env=child_env(), cwd=str(REPO), start_new_session=True)
        self._procs.append(proc)
        return proc, log

    def _boot_script(self) -> Path:
        """The pools' `--container_executable`: runs replaymill.deploy.worker_boot with this interpreter."""
        script = self.workdir / "boot"
        script.write_text(f"#!/bin/sh\nexec {sys.executable} -m replaymill.deploy.worker_boot \"$@\"\n")
        script.chmod(0o755)
        return script

    def start(self) -> "LocalPortableCluster":
        try:
            boot = self._boot_script()
            addresses = []
            for i in range(self.pools):
                port = free_port()
                proc, log = self._spawn(f"pool-{i}", ["apache_beam.runners.worker.worker_pool_main",
                                                      f"--service_port={port}", f"--container_executable={boot}"])
                addresses.append((f"localhost:{port}", proc, log))
            port_file = self.workdir / "job.port"
            job, job_log = self._spawn("job-service", ["replaymill.deploy.local_job_service", "--port=0",
                                                       f"--port_file={port_file}"])
            for address, proc, log in addresses:
                wait_for_grpc(address, proc, log)
            self.dispatcher = RoundRobinWorkerPools([a for a, _, _ in addresses])
            self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
            beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(self.dispatcher, self._server)
            self.worker_endpoint = f"localhost:{self._server.add_insecure_port('localhost:0')}"
            self._server.start()
            deadline = time.monotonic() + START_TIMEOUT_S
            while not port_file.exists():
                if job.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"job service did not start:\n{job_log.read_text()[-2000:]}")
                time.sleep(0.05)
            self.job_endpoint = f"localhost:{port_file.read_text().strip()}"
            wait_for_grpc(self.job_endpoint, job, job_log)
        except BaseException:
            self.close()
            raise
        return self

    @property
    def process_groups(self) -> list[int]:
        """Process-group ids of the running children (each leads its own group, with what it spawned)."""
        return [proc.pid for proc in self._procs]

    def pipeline_args(self, workers: int | None = None) -> list[str]:
        """PortableRunner options that send a pipeline to this cluster, one SDK worker per pool by default."""
        return [
            "--runner=PortableRunner",
            f"--job_endpoint={self.job_endpoint}",
            "--environment_type=EXTERNAL",
            f"--environment_config={self.worker_endpoint}",
            f"--direct_num_workers={workers or self.pools}",
        ]

    def close(self) -> None:
        """Stop the dispatcher, then each child and everything it spawned (SIGINT, then SIGKILL)."""
        if self._server is not None:
            self._server.stop(0)
            self._server = None
        if self.dispatcher is not None:
            self.dispatcher.close()
        for proc in self._procs:
            if proc.poll() is None:
                # SIGINT lets a worker pool run its atexit hook, which stops the workers it spawned.
                os.killpg(proc.pid, signal.SIGINT)
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # leftovers of this child's own session only
            except ProcessLookupError:
                pass
            proc.wait()
        self._procs.clear()

    def __enter__(self) -> "LocalPortableCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start a loopback portable Beam cluster and print its options.")
    parser.add_argument("--pools", type=int, default=2, help="number of external SDK worker pools")
    args = parser.parse_args(argv)
    with LocalPortableCluster(args.pools) as cluster:
        # Once up, Ctrl-C / SIGTERM only set an event, so a signal arriving at any point (while
        # printing, or inside gRPC) cannot skip or cut short the shutdown; during start-up Ctrl-C
        # still aborts it.
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        print(" ".join(cluster.pipeline_args()), flush=True)
        print(f"logs in {cluster.workdir}; Ctrl-C to stop", file=sys.stderr, flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
