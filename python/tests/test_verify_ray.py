"""The Ray backend on a local Ray cluster with the stand-in checker: same API, same answers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from standin import read_log, standin_command, with_checker

from stp.config import load_config
from stp.verify import VerifyItem, make_verifier


@pytest.mark.slow
def test_ray_backend_verifies_like_the_local_pool(tmp_path: Path) -> None:
    import ray

    from stp.cluster import shutdown_cluster

    log = tmp_path / "log"
    cfg = load_config(None, [
        "verifier.backend='ray'", "verifier.workers=2", "verifier.cpus_per_worker=0.5",
        "verifier.memory_per_worker_mb=0", "verifier.timeout_s=2.0",
        f"verifier.cache_dir={str(tmp_path / 'cache')!r}",
        "cluster.num_cpus=2", "cluster.reserved_cpus=0",
        # one process start per pass would dominate; re-checks are tested on the local pool
        "verifier.recheck='off'",
    ])
    spec = {"log": str(log), "rules": [{"pattern": "bad", "action": "fail"},
                                       {"pattern": "CRASH", "action": "crash"},
                                       {"pattern": "HANG", "action": "hang"}]}
    try:
        with make_verifier(with_checker(cfg, standin_command(spec))) as v:
            items = [VerifyItem(statement="theorem t : True :=",
                                proof=f" by {'bad' if i % 4 == 0 else 'simp'} {i % 900}")
                     for i in range(1000)]
            items += [VerifyItem(statement="theorem c : True :=", proof=" CRASH"),
                      VerifyItem(statement="theorem h : True :=", proof=" HANG")]
            seen: Counter[int] = Counter()
            results = {}
            for index, result in v.verify(items):
                seen[index] += 1
                results[index] = result
            assert sorted(seen) == list(range(len(items))) and set(seen.values()) == {1}
            expected = ["fail" if i % 4 == 0 else "pass" for i in range(1000)]
            assert [results[i].status for i in range(1000)] == expected
            assert results[1000].status == "crash" and results[1001].status == "timeout"
            assert v.last_stats.unique == 902
            # a second pass is served by the driver-side cache
            again = v.verify_all(items[:50])
            assert all(r.cached for r in again)
        checks = [e for e in read_log(log) if e["ev"] == "check"]
        assert len([e for e in checks if "CRASH" not in e["proof"]
                    and "HANG" not in e["proof"]]) == 900
        assert ray.is_initialized()
    finally:
        shutdown_cluster()
