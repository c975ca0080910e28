"""stp.cluster: local start-up, connecting by address, and the error paths of a bad address.

The real start-up runs in a subprocess so it neither depends on nor disturbs a Ray session other
tests may hold in this process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from stp import cluster
from stp.cluster import ClusterConfig
from stp.errors import UsageError
from stp.host import available_cpus

_SCRIPT = textwrap.dedent(
    """
    import json, subprocess, sys
    import ray
    from stp import cluster
    from stp.cluster import ClusterConfig

    out = {}
    info = cluster.init_cluster(ClusterConfig(num_cpus=2, reserved_cpus=1, namespace="t"))
    out["local"] = {"num_cpus": info.num_cpus, "nodes": info.nodes,
                    "started_locally": info.started_locally, "lean_slots": info.lean_slots,
                    "address": info.address}

    @ray.remote(num_cpus=1, resources={cluster.LEAN_RESOURCE: 1})
    def square(x):
        return x * x

    out["task"] = ray.get([square.remote(i) for i in range(4)])
    out["again_same"] = cluster.init_cluster(ClusterConfig(num_cpus=7)) == info
    child = (
        "from stp import cluster; from stp.cluster import ClusterConfig; import ray, json;"
        f"i = cluster.init_cluster(ClusterConfig(address={info.address!r}, namespace='t'));"
        "f = ray.remote(lambda: 5);"
        "print(json.dumps({'started_locally': i.started_locally, 'nodes': i.nodes,"
        " 'lean_slots': i.lean_slots, 'task': ray.get(f.remote())}));"
        "cluster.shutdown_cluster()"
    )
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                          timeout=120)
    out["child_rc"] = proc.returncode
    out["child"] = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else proc.stderr[-2000:]
    cluster.shutdown_cluster()
    out["after_shutdown"] = ray.is_initialized()
    cluster.shutdown_cluster()  # a second call is harmless
    print("RESULT " + json.dumps(out))
    """
)


def test_local_cluster_start_connect_and_shutdown() -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line.removeprefix("RESULT "))
    assert out["local"]["num_cpus"] == 2
    assert out["local"]["nodes"] == 1
    assert out["local"]["started_locally"] is True
    assert out["local"]["lean_slots"] == 1  # 2 CPUs minus 1 reserved
    assert ":" in out["local"]["address"]
    assert out["task"] == [0, 1, 4, 9]
    assert out["again_same"] is True  # idempotent: describes the running cluster
    assert out["child_rc"] == 0, out["child"]
    assert out["child"] == {"started_locally": False, "nodes": 1, "lean_slots": 1, "task": 5}
    assert out["after_shutdown"] is False


@pytest.fixture
def no_ray_session(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Pretend Ray is not initialised and record (instead of running) any ray.init call."""
    import ray

    calls: list[dict] = []
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **kw: calls.append(kw))
    return calls


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_address_is_a_one_line_usage_error(no_ray_session: list[dict]) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(UsageError, match=f"cannot reach the Ray cluster at {address}") as info:
        cluster.init_cluster(ClusterConfig(address=address))
    assert "\n" not in str(info.value)
    assert no_ray_session == []  # never handed to Ray's long reconnect loop


def test_ray_address_env_is_used_when_address_empty(
    no_ray_session: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("RAY_ADDRESS", address)
    with pytest.raises(UsageError, match=f"cannot reach the Ray cluster at {address}"):
        cluster.init_cluster(ClusterConfig())
    assert no_ray_session == []


@pytest.mark.parametrize("address", ["justahost", "host:port", ":6379"])
def test_malformed_address(no_ray_session: list[dict], address: str) -> None:
    with pytest.raises(UsageError, match="must be host:port"):
        cluster.init_cluster(ClusterConfig(address=address))


def test_ray_refusing_connection_is_a_usage_error(
    no_ray_session: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    def refuse(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Could not find any running Ray instance.\nmore detail")

    monkeypatch.setattr(ray, "init", refuse)
    with socket.socket() as listener:  # reachable, but not a Ray head
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(UsageError, match=r"Could not find any running Ray instance\.$"):
            cluster.init_cluster(ClusterConfig(address=address))


def test_negative_sizes_rejected_when_the_config_loads() -> None:
    # The range is in the field's type (NonNegativeInt), so a negative size never reaches
    # init_cluster: loading the config fails naming the key.
    from stp.config import load_config
    from stp.errors import ConfigError

    for key in ("num_cpus", "num_gpus", "reserved_cpus"):
        with pytest.raises(ConfigError, match=rf"cluster\.{key}"):
            load_config(None, [f"cluster.{key}=-1"])


def test_local_sizing_passed_to_ray(no_ray_session: list[dict], monkeypatch: pytest.MonkeyPatch) -> None:
    fake = cluster.ClusterInfo(address="x:1", num_cpus=1, num_gpus=0, nodes=1, started_locally=True)
    monkeypatch.setattr(cluster, "_current_info", lambda started: fake)
    monkeypatch.setattr(cluster, "_started_locally", False)  # restored after the test
    cluster.init_cluster(ClusterConfig(num_cpus=0, reserved_cpus=1, namespace="ns"))
    kwargs = no_ray_session[-1]
    assert kwargs["num_cpus"] == available_cpus()
    assert kwargs["num_gpus"] is None  # 0 = let Ray detect
    assert kwargs["resources"] == {cluster.LEAN_RESOURCE: float(max(1, available_cpus() - 1))}
    assert kwargs["include_dashboard"] is False
    assert kwargs["namespace"] == "ns"


def test_resource_names_and_accelerator_choice() -> None:
    assert cluster.LEAN_RESOURCE == "stp_lean"
    assert cluster.SAMPLER_RESOURCE == cluster.TRAINER_RESOURCE == "GPU"
    gpu = cluster.ClusterInfo(address="a", num_cpus=8, num_gpus=8, nodes=1, started_locally=False,
                              resources={"CPU": 8.0, "GPU": 8.0})
    tpu = cluster.ClusterInfo(address="a", num_cpus=8, num_gpus=0, nodes=1, started_locally=False,
                              resources={"CPU": 8.0, "TPU": 4.0})
    assert cluster.accelerator_resource(gpu) == "GPU"
    assert cluster.accelerator_resource(tpu) == "TPU"
