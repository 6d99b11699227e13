import pytest

from conftest import ROOT
from evo_kernels import config


def test_defaults_are_strict():
    cfg = config.load(None)
    assert cfg.verify.tolerances["float32"] == [1e-4, 1e-4]
    assert cfg.verify.allow_reduced_precision is False
    assert cfg.timing.min_reps >= 100
    assert cfg.baselines == ["eager", "compile"]


def test_shipped_default_yaml_matches_builtin_defaults():
    assert config.load(ROOT / "configs" / "default.yaml").to_dict() == config.load(None).to_dict()


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
