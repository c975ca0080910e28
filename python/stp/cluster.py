"""Ray cluster bootstrap and the resource names every stage schedules by.

Resource names are defined here once so the verifier, the samplers and the trainer agree on them:

* `LEAN_RESOURCE` ("stp_lean") is a custom Ray resource counting Lean checker slots on a node. A
  node offers it only if it has the Lean toolchain and the built checker, so in a mixed cluster
  (GPU nodes without Lean, CPU nodes with Lean) checker actors land where they can run. A local
  cluster started by `init_cluster` declares `num_cpus - cluster.reserved_cpus` slots (at least 1);
  on a real cluster declare it when starting each Lean node, e.g.
  `ray start --address=HEAD:6379 --resources='{"stp_lean": 60}'`.
  A checker worker asks for one slot plus `verifier.cpus_per_worker` CPUs.
* `SAMPLER_RESOURCE` and `TRAINER_RESOURCE` are the accelerator resource an engine or trainer
  asks for ("GPU"). On TPU pods use `accelerator_resource(info)`, which answers "TPU" there.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import msgspec

from stp.errors import UsageError
from stp.host import available_cpus
from stp.ranges import NonNegativeInt


class ClusterConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Ray placement. An empty address starts a local cluster sized to this machine."""

    address: str = ""
    namespace: str = "stp"
    # Caps for a locally started cluster (0 = use what the machine has).
    num_cpus: NonNegativeInt = 0
    num_gpus: NonNegativeInt = 0
    # CPUs kept free per node for Ray itself and the driver (the original reserved 4).
    reserved_cpus: NonNegativeInt = 1


LEAN_RESOURCE = "stp_lean"
SAMPLER_RESOURCE = "GPU"
TRAINER_RESOURCE = "GPU"
TPU_RESOURCE = "TPU"

log = logging.getLogger(__name__)


class ClusterInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the driver is connected to, as reported by Ray after start-up."""

    address: str
    num_cpus: int
    num_gpus: int
    nodes: int
    started_locally: bool
    # Total cluster resources, e.g. {"CPU": 64.0, "GPU": 8.0, "stp_lean": 60.0, ...}.
    resources: dict[str, float] = msgspec.field(default_factory=dict)

    @property
    def lean_slots(self) -> int:
        return int(self.resources.get(LEAN_RESOURCE, 0))


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("Ray is not installed: pip install 'stp-prover[cluster]'") from None
    return ray


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds on a wrong address instead of waiting for Ray's long reconnect loop."""
    if address == "auto" or address.startswith("local"):
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port_text = hostport.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise UsageError(
            f"cluster.address {address!r} must be host:port, ray://host:port or 'auto'"
        )
    try:
        with socket.create_connection((host, int(port_text)), timeout=timeout_s):
            pass
    except OSError as err:
        raise UsageError(
            f"cannot reach the Ray cluster at {address} ({err.strerror or err}); start it with "
            "`ray start --head` or leave cluster.address empty to start a local one"
        ) from None


def _current_info(started_locally: bool) -> ClusterInfo:
    ray = _import_ray()
    resources = {k: float(v) for k, v in ray.cluster_resources().items()}
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    context = ray.get_runtime_context()
    address = getattr(context, "gcs_address", "") or ""
    return ClusterInfo(
        address=address,
        num_cpus=int(resources.get("CPU", 0)),
        num_gpus=int(resources.get("GPU", 0)),
        nodes=len(nodes),
        started_locally=started_locally,
        resources=resources,
    )


_started_locally = False


def init_cluster(cfg: ClusterConfig) -> ClusterInfo:
    """Connect to `cfg.address` (else $RAY_ADDRESS), or start a local Ray cluster sized to this machine.

    Idempotent: if Ray is already initialised in this process, describes that cluster instead of
    starting another. A wrong address is a UsageError (one line, exit status 2).
    """
    global _started_locally
    ray = _import_ray()
    if ray.is_initialized():
        return _current_info(_started_locally)
    quiet = {"logging_level": logging.WARNING, "namespace": cfg.namespace or None}
    # Ray's own convention: an empty address with RAY_ADDRESS set means "join that cluster".
    address = cfg.address or os.environ.get("RAY_ADDRESS", "")
    if address:
        _check_reachable(address)
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UsageError(f"cannot connect to the Ray cluster at {address}: {first}") from None
        _started_locally = False
        info = _current_info(False)
        if info.lean_slots == 0:
            log.warning(
                "the Ray cluster at %s offers no %r resource; Lean checker workers cannot be "
                "placed until nodes are started with --resources='{\"%s\": N}'",
                address, LEAN_RESOURCE, LEAN_RESOURCE,
            )
        return info
    num_cpus = cfg.num_cpus or available_cpus()
    lean_slots = max(1, num_cpus - cfg.reserved_cpus)
    ray.init(
        num_cpus=num_cpus,
        # None lets Ray detect the GPUs it can see (0 in the config means "what the machine has").
        num_gpus=cfg.num_gpus or None,
        resources={LEAN_RESOURCE: float(lean_slots)},
        include_dashboard=False,
        **quiet,
    )
    _started_locally = True
    info = _current_info(True)
    log.info(
        "started a local Ray cluster: %d CPUs, %d GPUs, %d Lean slots",
        info.num_cpus, info.num_gpus, info.lean_slots,
    )
    return info


def shutdown_cluster() -> None:
    """Disconnect (and stop a locally started cluster); safe to call when not initialised."""
    global _started_locally
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()
    _started_locally = False


def accelerator_resource(info: ClusterInfo) -> str:
    """The resource a sampler/trainer should request on this cluster: "TPU" on TPU-only clusters."""
    if info.resources.get("GPU", 0) == 0 and info.resources.get(TPU_RESOURCE, 0) > 0:
        return TPU_RESOURCE
    return SAMPLER_RESOURCE
