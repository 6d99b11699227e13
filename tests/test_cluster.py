"""RayPool on a two-node Ray cluster on this machine: routing by hardware label, an actor killed
mid-evaluation, and a label no actor has. Real evaluators: each actor starts a sandbox worker."""
import time

import pytest

from evo_kernels import config
from evo_kernels.model.candidate import Candidate
from evo_kernels.cluster import Job, LocalPool, RayPool

from conftest import CANDIDATES, CONFIGS, PROBLEMS

ray = pytest.importorskip("ray")

PROBLEM = str(PROBLEMS / "tiny_linear_relu.py")

# The tiny problem with a reference that sleeps: an evaluation (baselines + verify) takes ~6 s of
# wall time without loading the two cores, which leaves time to kill its actor mid-evaluation.
SLOW_PROBLEM = '''"""Linear -> ReLU whose reference sleeps 0.2 s per call."""
import time

import torch
from torch import nn


class Model(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        time.sleep(0.2)
        return torch.relu(self.linear(x))


def get_inputs():
    return [torch.randn(8, 16)]


def get_init_inputs():
    return [16]
'''


@pytest.fixture(scope="module")
def pool(cluster):
    # The slow problem's candidate is far faster than its sleeping reference: lift the audit cap.
    cfg = config.load(CONFIGS / "fast.yaml", overrides={"cluster": {"max_retries": 1},
                                                        "verify": {"audit_max_speedup": 1e9}})
    p = RayPool(cfg, address=cluster.address)
    yield p
    p.close()


@pytest.fixture(scope="module")
def nodes(pool):
    """hardware label -> id of the node that advertises it."""
    return {k[3:]: n["NodeID"] for n in ray.nodes() if n["Alive"] for k in n["Resources"] if k.startswith("hw:")}


@pytest.fixture(scope="module")
def slow_problem(tmp_path_factory):
    path = tmp_path_factory.mktemp("problems") / "slow_linear_relu.py"
    path.write_text(SLOW_PROBLEM)
    return str(path)


def candidate():
    return Candidate((CANDIDATES / "linear_relu_addmm.py").read_text())


def drain(pool, limit_s=120.0):
    results, deadline = [], time.monotonic() + limit_s
    while pool.pending():
        assert time.monotonic() < deadline, "pool did not finish its jobs in time"
        results += pool.poll(timeout=1.0)
    return results


def running_slot(pool, job, attempt, limit_s=60.0):
    """The actor slot running `job`'s attempt number `attempt` (the pool dispatches on poll)."""
    deadline = time.monotonic() + limit_s
    while True:
        slot = next((s for s in pool._slots if s.job is job), None)
        if slot is not None and job.attempts == attempt:
            return slot
        assert time.monotonic() < deadline, f"attempt {attempt} of job {job.key} was never dispatched"
        assert not pool.poll(timeout=0.2), "no other job should finish here"


def test_routes_jobs_by_hardware_label(pool, nodes):
    assert pool.hardware() == ["cpu-a", "cpu-b"]  # from the nodes' hw: resources, not the CPU's own name
    jobs = [Job(k, PROBLEM, candidate(), hardware=hw) for k, hw in enumerate(["cpu-a", "cpu-b"] * 2)]
    jobs.append(Job(len(jobs), PROBLEM, candidate()))  # any hardware
    for job in jobs:
        pool.submit(job)
    results = drain(pool)
    assert sorted(r.job.key for r in results) == [j.key for j in jobs]
    for r in results:
        assert r.evaluation.status == "ok", r.evaluation.reason
        assert r.job.attempts == 1
        if r.job.hardware is not None:
            assert r.worker.hardware == r.job.hardware
            assert r.worker.node == nodes[r.job.hardware]
    base = pool.baselines(PROBLEM, "cpu-b")
    assert base["eager"]["median_ms"] > 0
    by_name = {a["name"]: a for a in pool.stats()["actors"]}
    assert sum(a["jobs"] for a in by_name.values()) == len(jobs)
    assert all(a["deaths"] == 0 and a["busy_s"] > 0 for a in by_name.values())


def test_unknown_hardware_is_a_clear_error(pool):
    with pytest.raises(ValueError, match=r"'cpu-z'.*'cpu-a', 'cpu-b'"):
        pool.submit(Job(99, PROBLEM, candidate(), hardware="cpu-z"))
    with pytest.raises(ValueError, match="cpu-z"):
        pool.baselines(PROBLEM, "cpu-z")
    assert pool.pending() == 0


def test_killed_actor_job_is_retried_and_ends_ok(pool, nodes, slow_problem):
    job = Job(100, slow_problem, candidate(), hardware="cpu-a")
    pool.submit(job)
    slot = running_slot(pool, job, attempt=1)
    time.sleep(1.5)  # well inside the ~6 s evaluation
    ray.kill(slot.handle, no_restart=False)
    (result,) = drain(pool)
    assert result.evaluation.status == "ok", result.evaluation.reason
    assert job.attempts == 2  # max_retries = 1: one retry, on the recreated cpu-a actor
    assert result.worker.hardware == "cpu-a" and result.worker.node == nodes["cpu-a"]
    (actor,) = [a for a in pool.stats()["actors"] if a["hardware"] == "cpu-a"]
    assert actor["deaths"] == 1


def test_job_crashes_after_retries_and_the_run_goes_on(pool, slow_problem):
    job = Job(200, slow_problem, candidate(), hardware="cpu-a")
    pool.submit(job)
    for attempt in (1, 2):  # the second kill may hit the recreated actor while it still starts
        slot = running_slot(pool, job, attempt)
        time.sleep(1.5)
        ray.kill(slot.handle, no_restart=False)
    (result,) = drain(pool)
    assert result.evaluation.status == "crash"
    assert "evaluator actor died" in result.evaluation.reason
    assert job.attempts == 2
    after = Job(201, PROBLEM, candidate(), hardware="cpu-a")
    pool.submit(after)
    (result,) = drain(pool)
    assert result.evaluation.status == "ok", result.evaluation.reason
    assert pool.hardware() == ["cpu-a", "cpu-b"]


def test_actor_plan_per_node(fast_config):
    """One actor per GPU (or a share of one), pinned to its node and asking for its node's label."""
    plan = RayPool.__new__(RayPool)  # only the planning: no Ray instance, no actors
    plan.cfg = fast_config
    plan.cfg.cluster.actors_per_gpu = 2
    gpu_node = {"NodeID": "ab" * 28, "NodeManagerAddress": "10.0.0.1",
                "Resources": {"CPU": 4.0, "GPU": 2.0, "hw:H100-80GB-HBM3": 2.0}}
    slots = plan._node_slots(gpu_node, None)
    assert len(slots) == 4 and len({s.info.name for s in slots}) == 4
    assert all(s.options["num_gpus"] == 0.5 and s.options["resources"] == {"hw:H100-80GB-HBM3": 0.5}
               and s.args[1] == "cuda" and s.args[3] == "H100-80GB-HBM3" for s in slots)
    assert slots[0].options["scheduling_strategy"].node_id == "ab" * 28
    bare_cpu = {"NodeID": "cd" * 28, "NodeManagerAddress": "10.0.0.2", "Resources": {"CPU": 8.0}}
    (slot,) = plan._node_slots(bare_cpu, None)  # cpu_actors = 0: one per host
    assert slot.options["num_cpus"] == 1 and "resources" not in slot.options and slot.args[3] is None
    assert plan._node_slots({**bare_cpu, "Resources": {"CPU": 0.0}}, None) == []  # e.g. a head node
    plan.cfg.device = "cpu"  # a CPU run on a GPU node: CPU actors, labelled by their CPU, not the GPU
    (slot,) = plan._node_slots(gpu_node, None)
    assert "num_gpus" not in slot.options and "resources" not in slot.options and slot.args[3] is None


def test_local_pool_keeps_the_same_contract(fast_config):
    with LocalPool(fast_config) as pool:
        (label,) = pool.hardware()
        with pytest.raises(ValueError, match="cpu-z"):
            pool.submit(Job(0, PROBLEM, candidate(), hardware="cpu-z"))
        pool.submit(Job(1, PROBLEM, candidate(), hardware=label))
        (result,) = drain(pool)
        assert result.evaluation.status == "ok", result.evaluation.reason
        # The roofline of a Linear on a CPU: its product at the measured fp32 rate (no tensor cores).
        base = result.evaluation.baseline
        assert base["bound_units"] == {"matmul": "fp32"} and base["bound_ms"] > 0
        (actor,) = pool.stats()["actors"]
        assert actor["jobs"] == 1 and actor["busy_s"] > 0 and actor["hardware"] == label


def test_a_free_actor_prefers_a_problem_whose_baselines_it_has_timed():
    """Dispatch alone (no Ray): fake actor handles record what they were sent."""
    import collections

    from evo_kernels.cluster import WorkerInfo, _Slot

    class Handle:
        def __init__(self):
            self.sent = []
            self.run = self

        def remote(self, kind, problem, candidate, configs=None):
            self.sent.append(problem)
            return object()

    pool = RayPool.__new__(RayPool)
    pool.queue = collections.deque()
    pool._slots = [_Slot(WorkerInfo(f"a{i}", "hw", "cuda"), {}, (), handle=Handle()) for i in range(2)]
    a, b = pool._slots
    a.measured.add("A.py")
    b.measured.add("B.py")
    cand = Candidate("x = 1")
    pool.queue.extend([Job(1, "B.py", cand), Job(2, "A.py", cand), Job(3, "C.py", cand)])
    pool._dispatch()
    assert a.handle.sent == ["A.py"] and b.handle.sent == ["B.py"]  # not the oldest job: its own problem
    assert [j.problem for j in pool.queue] == ["C.py"]
    a.ref = None
    pool._dispatch()  # nothing of its own left: the oldest queued job, whatever its problem
    assert a.handle.sent == ["A.py", "C.py"] and "C.py" in a.measured and not pool.queue
    # One actor, two problems: affinity looks no further than one job ahead, so the older job of the
    # other problem goes first (a suite is served breadth-first, not one problem to its end).
    pool._slots = [a]
    a.ref = None
    pool.queue.extend([Job(4, "B.py", cand), Job(5, "A.py", cand)])
    pool._dispatch()
    assert a.handle.sent[-1] == "B.py" and [j.problem for j in pool.queue] == ["A.py"]


def test_local_pool_turns_an_evaluator_error_into_a_crash_result_and_goes_on(fast_config):
    pool = LocalPool(fast_config)
    try:
        real = pool.evaluator.evaluate
        calls = []

        def flaky(problem, candidate):
            calls.append(problem)
            if len(calls) == 1:
                raise RuntimeError("the reference Model failed on cpu: out of memory")
            return real(problem, candidate)

        pool.evaluator.evaluate = flaky
        cand = Candidate((CANDIDATES / "linear_relu_addmm.py").read_text())
        problem = str(PROBLEMS / "tiny_linear_relu.py")
        pool.submit(Job(1, problem, cand))
        pool.submit(Job(2, problem, cand))
        first, second = pool.poll() + pool.poll()
        assert first.evaluation.status == "crash" and "RuntimeError: the reference Model failed" in first.evaluation.reason
        assert second.evaluation.status == "ok"
    finally:
        pool.close()
