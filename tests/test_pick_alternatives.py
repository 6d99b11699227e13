"""experiments/template_probe.py's sweeps and experiments/pick_alternatives.py's choice, without a GPU."""
import json

from evo_kernels.model.tunables import neighbours, satisfies
from evo_kernels.proposers.templates import TEMPLATES
from experiments import pick_alternatives as pa
from experiments import template_probe


def _key(c):
    return json.dumps(c, sort_keys=True)


def test_a_sweep_holds_the_defaults_every_neighbour_and_a_sample_within_the_constraints():
    for t in TEMPLATES:
        if t.name not in template_probe.SWEEPS:
            continue
        n = template_probe.SWEEPS[t.name][2]
        configs = template_probe.sweep(t.name, n)
        defaults = {k: v[0] for k, v in t.params.items()}
        full = [{**defaults, **c} for c in configs]
        assert configs[0] == {} and len({_key(c) for c in configs}) == len(configs), t.name
        assert all(satisfies(c, t.constraints) and all(c[k] in t.params[k] for k in c) for c in full), t.name
        everything = 1
        for v in t.params.values():
            everything *= len(v)
        assert len(configs) == min(n, sum(satisfies(c, t.constraints) for c in _grid(t.params))), t.name
        if everything > n:  # sampled: the neighbours a draft's screen tries are all in
            near = neighbours(defaults, t.params, t.constraints, everything)
            assert all(c in full for c in near), t.name
    assert template_probe.sweep("reduce", 24) == template_probe.sweep("reduce", 24)  # seeded


def _grid(params):
    import itertools
    return [dict(zip(params, vals)) for vals in itertools.product(*params.values())]


def test_pick_adds_what_the_screen_misses_and_stops_when_it_gains_little():
    a, b, c, d = (_key({"X": i}) for i in range(4))
    times = {"p1": {a: 1.0, b: 1.1, c: 2.0, d: 1.0},   # the screen (a) is fastest here
             "p2": {a: 3.0, b: 2.9, c: 1.5, d: 2.0},   # c halves it
             "p3": {a: 2.0, b: 2.0, c: 2.0, d: 1.9}}   # d gains 5% on one problem of three
    assert pa.pick(times, [a], most=3, min_gain=0.05) == [c]
    assert pa.pick(times, [a], most=3, min_gain=0.01) == [c, d]
    assert pa.pick(times, [a], most=1, min_gain=0.0) == [c]
    assert pa.pick(times, [a, c], most=3, min_gain=0.05) == []  # what the screen tries is never picked
    assert pa.pick({"p": {a: 1.0, b: 2.0}}, [a], most=3, min_gain=0.0) == []  # b would make nothing faster
