"""The configuration: which network, which batches, how to optimise, how long to run.

One frozen dataclass per concern, bundled in :class:`Config`; the presets are instances.
A user's file (JSON, or TOML on Python 3.11+) overrides any of them by section::

    {"loader": {"batches_per_epoch": 100}, "optim": {"lr": 0.05}, "run": {"epochs": 5}}

:func:`build_config` merges such overrides into a preset, refuses unknown keys (naming the
nearest valid one) and checks every value, once, before anything is loaded or written.
A run saves its config as :meth:`Config.to_dict` gives it; :func:`config_from_dict` reads
that back, and also the flat layout of earlier versions (``{"image_size": 52, ...}``).
Every key, its default and its range: docs/config.md.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .distort import MAX_STRENGTH
from .layers import CONV_METHODS, INITS

try:
    import tomllib
except ImportError:  # Python 3.10: JSON configs only
    tomllib = None

class ConfigError(ValueError):
    """A setting that is unknown or out of range (the message names it and says what to do)."""


@dataclass(frozen=True)
class NetworkConfig:
    """The siamese net: input side, conv blocks [filters, kernel], embedding width, init."""
    image_size: int = 105
    conv: tuple = ((64, 10), (128, 7), (128, 4), (256, 4))
    dense: int = 4096
    init: str = "paper"
    conv_method: str = "auto"  # im2col or fft: every conv; auto: see SiameseNet, use_fft


@dataclass(frozen=True)
class GroupConfig:
    """A group batch: alphabets x characters x drawers images, every pair among them."""
    alphabets: int = 4
    characters: int = 4
    drawers: int = 4
    same_weight: float = 0.5        # share of the loss on same pairs
    hard_weight: float | None = None  # share of the different pairs' on within-alphabet ones
    one_shot_weight: float = 0.0    # w x losses.one_shot_softmax joins the cross-entropy


@dataclass(frozen=True)
class DistortConfig:
    """The paper's affine distortions: each component's chance, and a factor on its range."""
    p: float = 0.5
    strength: float = 1.0


@dataclass(frozen=True)
class LoaderConfig:
    """The training batches: the paper's independent pairs, or group batches."""
    kind: str = "pairs"
    batch_size: int = 128             # pairs: pairs per step (half same)
    pairs_per_epoch: int = 30_000     # pairs: pairs drawn per epoch
    distortions: int = 0              # pairs: 0 = fresh distortions; k = the paper's k copies
    hard_negative_fraction: float = 0.0  # pairs: different pairs within one alphabet
    batches_per_epoch: int = 720      # groups
    group: GroupConfig = GroupConfig()
    distort: DistortConfig = DistortConfig()
    rotations: int = 1                # each training character also turned, as new ones
    mirror: bool = False              # ... and mirrored, as new ones


@dataclass(frozen=True)
class OptimConfig:
    """Momentum SGD (optim.py): η_t = lr · lr_decay^t, μ ramps linearly from 0.5 to momentum."""
    lr: float = 0.01
    momentum: float = 0.9
    momentum_epochs: int = 10
    l2: float = 2e-4
    lr_decay: float = 0.99
    average: float = 0.0              # β of the weight average validated and kept; 0: off
    layers: dict = field(default_factory=dict)  # {"conv1": {"lr": ..., "l2": ...}}


@dataclass(frozen=True)
class RunConfig:
    """How long to train and how to judge: epochs, early stopping, trials, seed."""
    epochs: int = 200
    patience: int = 20
    time_budget_minutes: float | None = None
    val_trials: int = 320
    test_trials: int = 400
    seed: int = 0


@dataclass(frozen=True)
class Config:
    preset: str
    network: NetworkConfig = NetworkConfig()
    loader: LoaderConfig = LoaderConfig()
    optim: OptimConfig = OptimConfig()
    run: RunConfig = RunConfig()

    def to_dict(self) -> dict:
        """The config as plain JSON data, in the layout :func:`build_config` reads."""
        return json.loads(json.dumps(dataclasses.asdict(self)))  # tuples -> lists

    def replace(self, section: str, **values) -> "Config":
        """A copy with ``values`` set in ``section`` (e.g. ``cfg.replace("run", epochs=3)``)."""
        return dataclasses.replace(self, **{section: dataclasses.replace(
            getattr(self, section), **values)})


PRESETS = {
    # The paper's network (Koch et al. 2015, figure 4) at 105 x 105, for a GPU.
    "koch": Config("koch", loader=LoaderConfig(distortions=8),
                   optim=OptimConfig(momentum_epochs=20)),
    # The same shape at 52 x 52 with fewer filters: trains on 2 CPU cores in under an hour.
    # Group batches of 64 images (2,016 pairs) with the one-shot softmax, turned characters
    # and a weight average: each chosen on validation (docs/tuning.md).
    "small": Config(
        "small",
        NetworkConfig(image_size=52, conv=((32, 5), (64, 5), (64, 3), (128, 3)), dense=1024,
                      init="fan_in"),
        LoaderConfig(kind="groups", batch_size=64, pairs_per_epoch=25_600,
                     hard_negative_fraction=0.5, group=GroupConfig(one_shot_weight=0.3),
                     rotations=4),
        OptimConfig(lr=0.08, momentum_epochs=5, l2=1e-4, lr_decay=0.93, average=0.9995),
        RunConfig(epochs=40, time_budget_minutes=55, val_trials=500)),
    # A toy net for tests and gradient checks: seconds, not minutes.
    "tiny": Config(
        "tiny",
        NetworkConfig(image_size=28, conv=((4, 5), (8, 3), (8, 3)), dense=32, init="fan_in"),
        LoaderConfig(batch_size=32, pairs_per_epoch=256),
        OptimConfig(lr=0.05, momentum_epochs=5, l2=0.0)),
}
SECTIONS = {"network": NetworkConfig, "loader": LoaderConfig, "optim": OptimConfig,
            "run": RunConfig, "group": GroupConfig, "distort": DistortConfig}
# The flat layout of earlier versions: each top-level key and the section it belongs to.
FLAT_KEYS = {f.name: section for section in ("network", "loader", "run")
             for f in dataclasses.fields(SECTIONS[section]) if f.name != "kind"}


def encoder_shapes(network: NetworkConfig) -> list[int]:
    """Spatial size after each conv block; ConfigError if the image gets too small."""
    size, sizes = network.image_size, []
    for i, (_, K) in enumerate(network.conv):
        size = size - K + 1
        last = i == len(network.conv) - 1
        if size < 1 or (not last and size < 2):
            raise ConfigError(f"network image_size {network.image_size} is too small for conv "
                              f"kernels {[k for _, k in network.conv]}")
        sizes.append(size if last else size // 2)
        size = sizes[-1]
    return sizes


# --------------------------------------------------------------------------- building
def build_config(preset: str | None = None, overrides: dict | None = None,
                 source: str = "config") -> Config:
    """The preset (default: its "preset" key in ``overrides``, else small) with ``overrides``
    merged in, section by section. ``source`` names the file in error messages."""
    overrides = _sectioned(dict(overrides or {}), source)
    name = overrides.pop("preset", None) if preset is None else preset
    name = "small" if name is None else name
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(f"{source}: unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    merged = _merge(PRESETS[name].to_dict(), overrides, source, "")
    cfg = Config(name, *(_build(SECTIONS[s], merged[s], source, s)
                         for s in ("network", "loader", "optim", "run")))
    _check_together(cfg, source)
    return cfg


def config_from_dict(data: dict, source: str = "config") -> Config:
    """A saved config (a run's config.json, a checkpoint's), in either layout, as a Config."""
    return build_config(None, data, source)


def read_config_file(path: Path) -> dict:
    """A JSON or TOML file of overrides -> dict; ConfigError (one line) if unreadable."""
    path, kind = Path(path), "TOML" if Path(path).suffix.lower() == ".toml" else "JSON"
    if kind == "TOML" and tomllib is None:
        raise ConfigError("TOML configs need Python 3.11+; write the config as JSON")
    try:
        text = path.read_bytes()
        data = tomllib.loads(text.decode()) if kind == "TOML" else json.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {path} is not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f'config {path} must hold an object of settings, e.g. {{"run": {{}}}}')
    return data


def _nearest(key: str, valid) -> str:
    """'; did you mean "lr"?': the valid key most like ``key``."""
    best = max(valid, key=lambda v: difflib.SequenceMatcher(None, key, v).ratio())
    return f'; did you mean "{best}"?'


def _sectioned(raw: dict, source: str) -> dict:
    """Top-level keys into sections: new-style sections pass, old flat keys are moved."""
    out: dict = {}
    for key, value in raw.items():
        if key == "preset":
            out["preset"] = value
        elif key == "loader" and isinstance(value, str):    # old: "loader": "groups"
            out.setdefault("loader", {})["kind"] = value
        elif key in ("network", "loader", "optim", "run"):
            if not isinstance(value, dict):
                raise ConfigError(f'{source}: section {key} must be an object such as '
                                  f'{{"{dataclasses.fields(SECTIONS[key])[0].name}": ...}}, not {value!r}')
            out.setdefault(key, {}).update(value)
        elif key in FLAT_KEYS:
            out.setdefault(FLAT_KEYS[key], {})[key] = value
        elif key != "preset_given":  # what earlier versions saved from the command line
            valid = ["preset", "network", "loader", "optim", "run"]
            raise ConfigError(f'{source}: unknown key "{key}" at the top level'
                              f"{_nearest(key, valid + list(FLAT_KEYS))}")
    return out


def _merge(base: dict, extra: dict, source: str, where: str) -> dict:
    """``base`` with ``extra`` merged in; nested sections merge, unknown keys are refused."""
    out = dict(base)
    for key, value in extra.items():
        if key not in base:
            raise ConfigError(f'{source}: unknown key "{key}" in section {where.rstrip(".")}'
                              f"{_nearest(key, list(base))}")
        nested = isinstance(base[key], dict) and key in SECTIONS
        if nested and not isinstance(value, dict):
            raise ConfigError(f"{source}: {where}{key} must be an object of settings such as "
                              f"{json.dumps(base[key])}, not {value!r}")
        out[key] = _merge(base[key], value, source, f"{where}{key}.") if nested else value
    return out


def _build(cls, values: dict, source: str, where: str):
    """The dataclass ``cls`` from ``values``, each value checked by its rule in RULES."""
    kwargs = {}
    for name in (f.name for f in dataclasses.fields(cls)):
        value = values[name]
        if name in SECTIONS:
            value = _build(SECTIONS[name], value, source, f"{where}.{name}")
        else:
            rule, meaning = RULES[name]
            ok, value = rule(value)
            if not ok:
                raise ConfigError(f"{source}: {where}.{name} must be {meaning}, not {values[name]!r}")
        kwargs[name] = value
    return cls(**kwargs)


def _number(low, high, low_open=False, high_open=False, none_ok=False):
    def rule(v):
        if v is None:
            return none_ok, v
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False, v
        return (v > low if low_open else v >= low) and (v < high if high_open else v <= high), float(v)
    return rule


def _whole(low, high=math.inf):
    return lambda v: (isinstance(v, int) and not isinstance(v, bool) and low <= v <= high, v)


def _conv(v):
    whole = _whole(1)
    ok = isinstance(v, (list, tuple)) and len(v) > 0 and all(
        isinstance(b, (list, tuple)) and len(b) == 2 and all(whole(n)[0] for n in b) for b in v)
    return ok, tuple(tuple(b) for b in v) if ok else v


def _layers(v):
    ok = isinstance(v, dict) and all(isinstance(g, dict) and set(g) <= {"lr", "momentum", "l2"}
                                     and all(_number(0, math.inf)(x)[0] for x in g.values())
                                     for g in v.values())
    return ok, dict(v) if ok else v


def _choice(options, meaning):
    return (lambda v: (isinstance(v, str) and v in options, v)), meaning


ONE_UP, NONE_UP = (_whole(1), "a whole number, 1 or more"), (_whole(0), "a whole number, 0 or more")
SHARE = (_number(0, 1, low_open=True, high_open=True), "a number strictly between 0 and 1")
# The rule of every setting, by name (names are unique across the sections).
RULES = {
    "image_size": (_whole(8), "a whole number of pixels, 8 or more"),
    "conv": (_conv, "a list of [filters, kernel] pairs of whole numbers"),
    "dense": ONE_UP, "init": _choice(INITS, f"one of {', '.join(INITS)}"),
    "conv_method": _choice(CONV_METHODS, f"one of {', '.join(CONV_METHODS)}"),
    "kind": _choice(("pairs", "groups"), '"pairs" or "groups"'),
    "batch_size": (lambda v: (_whole(2)(v)[0] and v % 2 == 0, v),
                   "an even whole number, 2 or more (half same pairs)"),
    "pairs_per_epoch": ONE_UP, "distortions": NONE_UP, "batches_per_epoch": ONE_UP,
    "hard_negative_fraction": (_number(0, 1), "a number from 0 to 1"),
    "rotations": (_whole(1, 4), "1, 2, 3 or 4 (quarter turns per character)"),
    "mirror": (lambda v: (isinstance(v, bool), v), "true or false"),
    "alphabets": ONE_UP, "characters": ONE_UP, "same_weight": SHARE,
    "drawers": (_whole(2), "a whole number, 2 or more (same pairs need two)"),
    "hard_weight": (_number(0, 1, True, True, none_ok=True),
                    "null or a number strictly between 0 and 1"),
    "one_shot_weight": (_number(0, math.inf), "a number from 0 (off) up"),
    "p": (_number(0, 1), "a number from 0 to 1 (each component's chance)"),
    "strength": (_number(0, MAX_STRENGTH, True, True), f"a number strictly between 0 and "
                 f"{MAX_STRENGTH:g} (a factor on the paper's ranges)"),
    "lr": (_number(0, math.inf, low_open=True), "a number above 0"),
    "momentum": (_number(0, 1, high_open=True), "a number from 0 to below 1"),
    "momentum_epochs": NONE_UP, "l2": (_number(0, math.inf), "a number from 0 up"),
    "lr_decay": (_number(0, 1, low_open=True), "a number above 0, at most 1"),
    "average": (_number(0, 1, high_open=True), "a number from 0 (off) up to below 1, such as 0.999"),
    "layers": (_layers, 'an object such as {"conv1": {"lr": 0.01}} (lr, momentum, l2 a layer)'),
    "epochs": ONE_UP, "patience": ONE_UP, "val_trials": ONE_UP, "seed": NONE_UP,
    "time_budget_minutes": (_number(0, math.inf, low_open=True, none_ok=True),
                            "null (none) or a number of minutes above 0"),
    "test_trials": (_whole(0), "a whole number, 0 (none) or more"),
}


def _check_together(cfg: Config, source: str) -> None:
    """The rules that tie two settings together."""
    encoder_shapes(cfg.network)
    loader = cfg.loader
    if loader.kind == "groups" and loader.distortions:
        raise ConfigError(f"{source}: loader.distortions = k (k distorted copies of each pair) "
                          "is the pairs loader's scheme; group batches distort every image "
                          "afresh: leave distortions at 0")
    if loader.kind == "pairs" and (1 + loader.distortions) * loader.pairs_per_epoch < loader.batch_size:
        raise ConfigError(f"{source}: loader.pairs_per_epoch {loader.pairs_per_epoch} gives no "
                          f"full batch of {loader.batch_size} pairs")
    unknown = set(cfg.optim.layers) - {f"conv{i}" for i in range(1, len(cfg.network.conv) + 1)} \
        - {"dense1", "join"}
    if unknown:
        raise ConfigError(f"{source}: optim.layers names unknown layers {sorted(unknown)}; the "
                          f"model has conv1..conv{len(cfg.network.conv)}, dense1 and join")


def with_overrides(cfg: Config, overrides: dict, source: str = "the command line") -> Config:
    """``cfg`` with ``overrides`` (sections of settings) merged in, checked as a whole again."""
    return build_config(None, _merge(cfg.to_dict(), _sectioned(overrides, source), source, ""),
                        source)
