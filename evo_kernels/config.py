"""Typed run configuration, loaded from configs/*.yaml.

Every section is a dataclass; loading walks the YAML mapping against the dataclass fields, so an
unknown key or a value of the wrong type is an error that names the file, the key and the value.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .model import devices



class ConfigError(ValueError):
    """A config file or value is wrong; the message names the file, key and value."""


@dataclass
class BaselineFlags:
    """The precision switches baselines and candidates run under with `precision: as_run` (PyTorch's
    defaults: cuDNN may use TF32 for convolutions, matrix products stay full fp32)."""

    cudnn_allow_tf32: bool = True  # torch.backends.cudnn.allow_tf32
    matmul_allow_tf32: bool = False  # torch.backends.cuda.matmul.allow_tf32
    float32_matmul_precision: str = "highest"  # torch.set_float32_matmul_precision: highest, high, medium
    fp16_reduced_precision_reduction: bool = True  # torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction
    bf16_reduced_precision_reduction: bool = True  # torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction


@dataclass
class VerifyConfig:
    trials: int = 6  # correctness trials: fresh inputs each (seeds the candidate cannot predict), modes, weights
    modes: list[str] = field(default_factory=lambda: ["train", "eval"])  # the modes the trials cycle through
    # The accuracy contract (precision: as_run): against a float64 oracle, the candidate's error is at
    # most max(floor, accuracy_factor x eager's), as a relative norm and elementwise (99.9th percentile
    # and max, scaled by the oracle's magnitude); exact dtypes count differing elements.
    accuracy_factor: float = 2.0
    floors: dict[str, float] = field(default_factory=lambda: {
        "float64": 1e-12, "float32": 1e-6, "float16": 1e-3, "bfloat16": 8e-3})
    # precision: strict: |out - ref| <= atol + rtol * |ref| elementwise against the fp32 reference, and
    # ||out - ref|| / ||ref|| <= rtol over the whole tensor (catches zeros passing on tiny outputs).
    tolerances: dict[str, list[float]] = field(default_factory=lambda: {
        "float64": [1e-7, 1e-7], "float32": [1e-4, 1e-4],
        "float16": [1e-2, 1e-2], "bfloat16": [1e-2, 1e-2],
    })
    allow_reduced_precision: bool = False  # candidates may set TF32 / reduced-precision switches; reports mark it
    static_policy: bool = True  # refuse sources that break policy.py's rules before running them
    audit_max_speedup: float = 10.0  # speedups above this are held as `rejected` (audit)
    degenerate_rel_change: float = 1e-3  # reference outputs changing less than this across trials: degenerate
    # On Hopper, the candidate's Triton kernels' SASS read after the trials: one that overwrites the
    # registers of matrix products still in flight is rejected (harness/wgmma_hazards.py).
    sass_check: bool = True


@dataclass
class TimingConfig:
    warmup_calls: int = 3  # at least this many untimed calls (compilation, autotuning)...
    warmup_ms: float = 100.0  # ...and at least this much time spent warming up
    min_reps: int = 100  # timed repetitions, at least...
    min_time_ms: float = 500.0  # ...and at least this much timed device time...
    max_time_s: float = 60.0  # ...but stop after this wall time once min_reps is reached
    flush_cache: bool = True  # write a buffer several times the last-level cache before each rep
    lead_ms: float = 1.0  # device busy-wait queued before each timed call (GPUs), so the call is queued when timing starts
    checked_outputs: int = 3  # timed outputs compared with the reference (stale-result cheats)
    # After timing, up to this many calls (and about repeat_ms) on one set of inputs, compared bit for
    # bit with the first: a race that writes a wrong result now and then (timing.repeat_check).
    repeat_calls: int = 400
    repeat_ms: float = 1000.0
    max_baseline_noise: float = 0.1  # eager timed twice differing more than this: measure baselines again
    # Each candidate's full measurement and torch.compile's are taken in this many parts (each its
    # share of the repetitions and time), the fastest part's median kept (eager is timed twice in
    # full regardless, its noise): interference only ever slows a call down, and on an H200 one
    # slowed measurement kept a candidate 7% faster than compile from confirmation (it read 0.892x;
    # experiments/RESULTS.md, 2026-12-01).
    repeats: int = 2
    profile_top_kernels: int = 5  # after timing, torch.profiler's top kernels of an accepted candidate (0: off)
    mode: str = "as_constructed"  # the mode models are timed in: as_constructed (as get_init_inputs builds it), eval, train
    # Confirmation, before a result is reported: the best candidates (up to confirm_top, within 10% of
    # the best) and both baselines timed again in interleaved rounds; a win needs the speedup's 95%
    # interval (bootstrap over rounds) above 1. confirm_rounds 0: 9 (with 5, one slowed round of a
    # candidate 7% faster put its interval's low end at 0.91 on an H200; with 9 it stays above 1).
    confirm: bool = True
    confirm_rounds: int = 0
    confirm_top: int = 3
    cpu_threads: int = 0  # torch threads on the CPU backend; 0 = leave torch's default


@dataclass
class SandboxConfig:
    timeout_s: float = 300.0  # per request (verify + time of one candidate) before the worker is killed
    startup_timeout_s: float = 120.0
    memory_limit_gb: float = 0.0  # address-space limit for CPU workers; 0 = none (CUDA maps huge VA ranges)
    file_size_limit_mb: float = 1024.0
    isolate_network: bool = True  # new network namespace for the worker where the OS allows it


@dataclass
class TuningConfig:
    sampler: str = "tpe"  # tpe, random or grid: how optuna picks a candidate's tunable values
    trials_per_candidate: int = 8  # configurations tried for each candidate that declares TUNABLE
    # Configurations screened in one evaluation (each timed briefly on the same inputs, the fastest
    # then verified and timed in full); 1: every configuration is a full evaluation of its own.
    screen: int = 8
    # A screen loads no further configuration once this many seconds have gone to it: each load
    # compiles the draft's kernels anew (on an H200 the first evaluation of level3's GEMM and
    # attention drafts, 8 configurations screened, ran past 270 s), and the defaults, screened first,
    # are always among those timed.
    screen_time_s: float = 120.0
    storage: str = ""  # optuna storage URL; "" = SQLite in the run directory (journal:PATH for NFS)


@dataclass
class ClusterConfig:
    backend: str = "ray"  # ray (local instance, or --address) or local (no Ray: one in-process evaluator)
    address: str = ""  # Ray address to join; "" starts a local Ray instance and stops it at the end
    actors_per_gpu: int = 1
    cpu_actors: int = 0  # evaluator actors on the CPU of a host without GPUs; 0 = one per host
    max_retries: int = 1  # a job whose actor died is retried this many times, then `crash`


@dataclass
class LLMModel:
    """One model of the LLM proposer. The key is never a config value (configs are stored with runs)."""

    name: str = ""  # the model name the endpoint knows, e.g. gpt-4o-mini, Qwen/Qwen2.5-Coder-32B-Instruct
    base_url: str = ""  # "" = OPENAI_BASE_URL from the environment, else OpenAI's own endpoint
    api_key_env: str = "OPENAI_API_KEY"  # the environment variable that holds the key
    weight: float = 1.0  # prior preference in the bandit (scales the model's score)
    temperature: float | None = 0.8  # None: not sent (models that only take their default)
    max_tokens: int = 8192  # answer length limit
    token_limit_field: str = "max_tokens"  # or max_completion_tokens (newer OpenAI models)
    concurrency: int = 4  # requests to this model in flight at once
    price_prompt: float = 0.0  # USD per million prompt tokens (0 for a local server)
    price_completion: float = 0.0  # USD per million completion tokens


@dataclass
class LLMConfig:
    models: list[LLMModel] = field(default_factory=list)  # `--llm NAME` adds one with the defaults
    timeout_s: float = 180.0  # per request attempt
    max_retries: int = 3  # retries after a timeout, a connection error, a 429 or a 5xx
    backoff_s: float = 2.0  # first retry delay, doubled each retry (a Retry-After header wins)
    cache_dir: str = ""  # answers cached by request; "" = <run dir>/llm-cache (another run's: replay it)
    offline: bool = False  # answer from the cache only; a miss is a proposal_error, no request sent
    inspirations: int = 2  # elite archive members shown in a prompt besides the parents
    failures: int = 3  # recent failures of the island shown (status and trimmed reason)
    max_error_chars: int = 800  # error text is trimmed to this many characters
    exploration: float = 1.0  # the bandit's UCB exploration weight


@dataclass
class SearchConfig:
    """The population's settings (search/population.py); the run adds its own below."""

    islands: int = 4
    island_size: int = 8  # members kept per island after truncation, the reference included
    elite_size: int = 2  # the best of an island always survive truncation
    tournament_size: int = 3
    migration_interval: int = 3  # generations between migrations
    migration_size: int = 1  # best members of each island copied to the next island (ring)
    crossover_rate: float = 0.3  # share of drafts with two parents; the rest mutate one
    feedback_size: int = 16  # recent failures kept per island
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.islands >= 1, "islands must be >= 1"),
            (self.island_size >= 2, "island_size must be >= 2 (the reference takes one place)"),
            (0 <= self.elite_size < self.island_size, "elite_size must be in [0, island_size)"),
            (self.tournament_size >= 1, "tournament_size must be >= 1"),
            (self.migration_interval >= 1, "migration_interval must be >= 1"),
            (self.migration_size >= 0, "migration_size must be >= 0 (0 disables migration)"),
            (0.0 <= self.crossover_rate <= 1.0, "crossover_rate must be in [0, 1]"),
            (self.feedback_size >= 0, "feedback_size must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"SearchConfig: {message}; got {self}")


@dataclass
class SearchSection(SearchConfig):
    drafts_per_generation: int = 8  # drafts proposed per generation (before tuning trials)
    proposers: list[str] = field(default_factory=lambda: ["rules"])
    max_generations_without_drafts: int = 3  # stop when proposers have nothing new this many times
    only: list[str] = field(default_factory=list)  # keep only drafts whose techniques are all listed
    exclude: list[str] = field(default_factory=list)  # drop drafts using any of these techniques


@dataclass
class Config:
    device: str = "auto"
    budget: int = 60  # evaluations per problem (a tuning screen counts one)
    time_limit_s: float = 0.0  # per problem: seconds it had work running or was being planned; 0 = none
    baselines: list[str] = field(default_factory=lambda: ["eager", "compile"])
    precision: str = "as_run"  # as_run: baseline_flags and the accuracy contract; strict: fp32 everywhere, 1e-4
    baseline_flags: BaselineFlags = field(default_factory=BaselineFlags)
    hints: list[str] = field(default_factory=list)  # guidance in words, put into every LLM prompt
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    search: SearchSection = field(default_factory=SearchSection)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint) or (Any,)
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = typing.get_args(hint) or (Any, Any)
        return {_check_type(k, kt, where): _check_type(v, vt, f"{where}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if arg is type(None) and value is None:
                return None
            try:
                return _check_type(value, arg, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: value {value!r} does not match {hint}")
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    return value


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(names)}")
    kwargs = {k: _check_type(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ValueError as e:  # a section's own validation (e.g. SearchConfig.__post_init__)
        raise ConfigError(f"{where}: {e}") from None


def _validate(cfg: Config, where: str) -> None:
    if not devices.valid(cfg.device):
        raise ConfigError(f"{where}.device: expected {devices.choices()}, got {cfg.device!r}")
    for b in cfg.baselines:
        if b not in ("eager", "compile"):
            raise ConfigError(f"{where}.baselines: unknown baseline {b!r}; expected eager or compile")
    if "eager" not in cfg.baselines:
        raise ConfigError(f"{where}.baselines: 'eager' is required (the reference is timed as eager)")
    if cfg.verify.trials < 2:
        raise ConfigError(f"{where}.verify.trials: need at least 2 trials, got {cfg.verify.trials}")
    if cfg.precision not in ("as_run", "strict"):
        raise ConfigError(f"{where}.precision: expected as_run or strict, got {cfg.precision!r}")
    if cfg.baseline_flags.float32_matmul_precision not in ("highest", "high", "medium"):
        raise ConfigError(f"{where}.baseline_flags.float32_matmul_precision: expected highest, high or medium, "
                          f"got {cfg.baseline_flags.float32_matmul_precision!r}")
    if not cfg.verify.modes or any(m not in ("train", "eval") for m in cfg.verify.modes):
        raise ConfigError(f"{where}.verify.modes: expected a non-empty list of train and eval, got {cfg.verify.modes!r}")
    if cfg.verify.accuracy_factor < 1 or any(f < 0 for f in cfg.verify.floors.values()):
        raise ConfigError(f"{where}.verify: accuracy_factor >= 1 and floors >= 0 are required, got "
                          f"{cfg.verify.accuracy_factor!r}, {cfg.verify.floors!r}")
    if cfg.timing.mode not in ("as_constructed", "eval", "train"):
        raise ConfigError(f"{where}.timing.mode: expected as_constructed, eval or train, got {cfg.timing.mode!r}")
    for dtype, tol in cfg.verify.tolerances.items():
        if len(tol) != 2 or min(tol) < 0:
            raise ConfigError(f"{where}.verify.tolerances.{dtype}: expected [atol, rtol] >= 0, got {tol!r}")
    if cfg.timing.min_reps < 1:
        raise ConfigError(f"{where}.timing.min_reps: must be >= 1, got {cfg.timing.min_reps}")
    if cfg.timing.repeats < 1:
        raise ConfigError(f"{where}.timing.repeats: must be >= 1, got {cfg.timing.repeats}")
    if cfg.timing.repeat_calls < 0 or cfg.timing.repeat_ms < 0:
        raise ConfigError(f"{where}.timing.repeat_calls and repeat_ms: must be >= 0 (0 turns the repeated calls "
                          f"off), got {cfg.timing.repeat_calls} and {cfg.timing.repeat_ms}")
    if cfg.budget < 1:
        raise ConfigError(f"{where}.budget: must be >= 1, got {cfg.budget}")
    if cfg.tuning.sampler not in ("tpe", "random", "grid"):
        raise ConfigError(f"{where}.tuning.sampler: expected tpe, random or grid, got {cfg.tuning.sampler!r}")
    if cfg.tuning.screen_time_s < 0:
        raise ConfigError(f"{where}.tuning.screen_time_s: must be >= 0 (0 screens the defaults alone), "
                          f"got {cfg.tuning.screen_time_s}")
    if cfg.cluster.backend not in ("ray", "local"):
        raise ConfigError(f"{where}.cluster.backend: expected ray or local, got {cfg.cluster.backend!r}")
    try:
        SearchConfig.__post_init__(cfg.search)
    except ValueError as e:
        raise ConfigError(f"{where}.search: {e}") from None
    if cfg.sandbox.timeout_s <= 0:
        raise ConfigError(f"{where}.sandbox.timeout_s: must be > 0, got {cfg.sandbox.timeout_s}")
    _validate_llm(cfg, where)


def _validate_llm(cfg: Config, where: str) -> None:
    llm = cfg.llm
    if "llm" in cfg.search.proposers and not llm.models:
        raise ConfigError(f"{where}.llm.models: the llm proposer is on but no model is named "
                          "(list models here or pass --llm MODEL)")
    names = [m.name for m in llm.models]
    if len(set(names)) != len(names) or "" in names:
        raise ConfigError(f"{where}.llm.models: every model needs a distinct, non-empty name; got {names}")
    for i, m in enumerate(llm.models):
        at = f"{where}.llm.models[{i}]"
        if m.weight <= 0 or m.concurrency < 1 or m.max_tokens < 1:
            raise ConfigError(f"{at}: weight > 0, concurrency >= 1 and max_tokens >= 1 are required; got {m}")
        if min(m.price_prompt, m.price_completion) < 0:
            raise ConfigError(f"{at}: prices must be >= 0; got {m.price_prompt}, {m.price_completion}")
        if m.token_limit_field not in ("max_tokens", "max_completion_tokens"):
            raise ConfigError(f"{at}.token_limit_field: expected max_tokens or max_completion_tokens, "
                              f"got {m.token_limit_field!r}")
    if llm.timeout_s <= 0 or llm.max_retries < 0 or llm.backoff_s < 0:
        raise ConfigError(f"{where}.llm: timeout_s > 0, max_retries >= 0 and backoff_s >= 0 are required")


def add_llm_models(cfg: Config, names: list[str], where: str = "--llm") -> Config:
    """`--llm NAME` (repeatable): use these models (a model the config lists keeps its settings) and
    turn the llm proposer on beside the others."""
    if not names:
        return cfg
    known = {m.name: m for m in cfg.llm.models}
    cfg.llm.models = [known.get(n) or LLMModel(name=n) for n in dict.fromkeys(names)]
    if "llm" not in cfg.search.proposers:
        cfg.search.proposers = [*cfg.search.proposers, "llm"]
    _validate_llm(cfg, where)
    return cfg


def from_dict(data: dict[str, Any] | None, where: str = "config") -> Config:
    cfg = _build(Config, data or {}, where)
    _validate(cfg, where)
    return cfg


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge plain mappings (override wins)."""
    out = dict(base)
    for k, v in override.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load a YAML config (or the built-in defaults) and apply overrides from the command line."""
    data: dict[str, Any] = {}
    where = "config"
    if path is not None:
        p = Path(path)
        where = str(p)
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"{p}: config file not found") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return from_dict(merge(data, overrides or {}), where)
