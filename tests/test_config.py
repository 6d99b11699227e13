import pytest

from conftest import ROOT
from evo_kernels import config


def test_defaults_are_pytorchs_as_users_run_it_with_the_contract():
    cfg = config.load(None)
    assert cfg.precision == "as_run" and cfg.baseline_flags.cudnn_allow_tf32 and not cfg.baseline_flags.matmul_allow_tf32
    assert cfg.verify.accuracy_factor == 2.0 and cfg.verify.floors["float32"] == 1e-6
    assert cfg.verify.tolerances["float32"] == [1e-4, 1e-4]  # precision: strict
    assert cfg.verify.allow_reduced_precision is False
    assert cfg.timing.min_reps >= 100 and cfg.timing.confirm
    assert cfg.baselines == ["eager", "compile"]


def _keys(data, prefix=""):
    out = set()
    for k, v in data.items():
        out.add(prefix + k)
        if isinstance(v, dict) and k not in ("floors", "tolerances"):  # dtype tables: values, not knobs
            out |= _keys(v, prefix + k + ".")
    return out


def test_shipped_default_yaml_lists_every_knob_at_its_default():
    import yaml
    shipped = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    builtin = config.load(None).to_dict()
    assert _keys(shipped) == _keys(builtin), sorted(_keys(builtin) ^ _keys(shipped))
    assert config.load(ROOT / "configs" / "default.yaml").to_dict() == builtin


@pytest.mark.parametrize("text, message", [
    ("timing:\n  min_repz: 5\n", "unknown key(s) ['min_repz']"),
    ("verify:\n  trials: many\n", "verify.trials: expected int, got 'many'"),
    ("verify:\n  trials: 1\n", "need at least 2 trials"),
    ("device: tpu\n", "device: expected auto, cpu"),
    ("baselines: [eager, magic]\n", "unknown baseline 'magic'"),
    ("- a\n- b\n", "expected a mapping at the top level"),
    ("timing: [1, 2\n", "not valid YAML"),
])
def test_bad_config_names_file_key_and_value(tmp_path, text, message):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(config.ConfigError) as err:
        config.load(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_int_accepted_for_float_and_overrides_merge():
    cfg = config.load(None, {"timing": {"warmup_ms": 5}})
    assert cfg.timing.warmup_ms == 5.0 and isinstance(cfg.timing.warmup_ms, float)
    assert cfg.timing.min_reps == 100


def test_shipped_cluster_yaml_loads():
    cfg = config.load(ROOT / "configs" / "cluster.yaml")
    assert cfg.cluster.backend == "ray" and cfg.search.drafts_per_generation == 16
