"""The configuration: presets as frozen dataclasses, overrides by section, unknown keys and
bad values refused in one line that names them."""
from __future__ import annotations

import dataclasses
import json

import pytest
from cli_helpers import assert_one_line_error, run
from tinysiamese.config import (PRESETS, Config, ConfigError, build_config, config_from_dict,
                                read_config_file, with_overrides)


def test_overrides_merge_section_by_section_and_leave_the_preset_alone():
    cfg = build_config("tiny", {"network": {"dense": 16},
                                "optim": {"lr": 0.5, "layers": {"join": {"lr": 1}}}})
    assert cfg.preset == "tiny" and cfg.network.dense == 16
    assert cfg.optim.lr == 0.5 and cfg.optim.momentum == 0.9, "a section was replaced, not merged"
    assert cfg.optim.layers == {"join": {"lr": 1}}
    assert cfg.network.conv == ((4, 5), (8, 3), (8, 3))
    assert PRESETS["tiny"].network.dense == 32 and PRESETS["tiny"].optim.lr == 0.05
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.network.dense = 3


def test_the_default_preset_is_small_and_a_file_may_name_another():
    assert build_config().preset == "small"
    assert build_config(None, {"preset": "koch"}).network.image_size == 105
    assert build_config("tiny", {"preset": "koch"}).preset == "tiny", "the option wins"
    with pytest.raises(ConfigError, match="unknown preset 'huge': choose one of koch, small, tiny"):
        build_config("huge")
    for odd in (["x"], [], 3):
        with pytest.raises(ConfigError, match="unknown preset"):
            build_config(None, {"preset": odd})


@pytest.mark.parametrize("overrides, message", [
    ({"optim": {"lrr": 0.1}}, 'unknown key "lrr" in section optim; did you mean "lr"?'),
    ({"epoch": 3}, 'unknown key "epoch" at the top level; did you mean "epochs"?'),
    ({"loader": {"group": {"alphabet": 2}}},
     'unknown key "alphabet" in section loader.group; did you mean "alphabets"?'),
    ({"run": {"epochs": 0}}, "run.epochs must be a whole number, 1 or more, not 0"),
    ({"loader": {"kind": "triplets"}}, 'loader.kind must be "pairs" or "groups", not \'triplets\''),
    ({"loader": "triplets"}, 'loader.kind must be "pairs" or "groups"'),
    ({"group": {"hard_weight": 1.5}}, "loader.group.hard_weight must be null or a number strictly between 0 and 1"),
    ({"group": {"same_weight": "half"}}, "loader.group.same_weight must be a number strictly between 0 and 1"),
    ({"group": {"one_shot_weight": -1}}, "loader.group.one_shot_weight must be a number from 0 (off) up"),
    ({"loader": "groups", "distortions": 8}, "leave distortions at 0"),
    ({"optim": {"average": 1.5}}, "optim.average must be a number from 0 (off) up to below 1"),
    ({"mirror": "yes"}, "loader.mirror must be true or false"),
    ({"rotations": 5}, "loader.rotations must be 1, 2, 3 or 4"),
    ({"distort": {"prob": 1.0}}, 'unknown key "prob" in section loader.distort; did you mean "p"?'),
    ({"distort": {"p": 1.5}}, "loader.distort.p must be a number from 0 to 1"),
    ({"distort": {"strength": 5}}, "loader.distort.strength must be a number strictly between 0 and 5"),
    ({"batch_size": 7}, "loader.batch_size must be an even whole number"),
    ({"optim": {"layers": {"conv9": {"lr": 1}}}}, "optim.layers names unknown layers ['conv9']"),
    ({"network": {"conv": [[4, "big"]]}}, "network.conv must be a list of [filters, kernel] pairs"),
    ({"network": 3}, "section network must be an object"),
])
def test_a_bad_setting_is_refused_in_one_line_naming_it(overrides, message):
    with pytest.raises(ConfigError) as info:
        build_config("tiny", overrides, "my.json")
    text = str(info.value)
    assert message in text and text.startswith("my.json: ") and "\n" not in text, text


def test_the_saved_layout_reads_back_to_the_same_config():
    for preset in PRESETS.values():
        data = json.loads(json.dumps(preset.to_dict()))
        assert config_from_dict(data) == preset
        assert set(data) == {"preset", "network", "loader", "optim", "run"}


def test_the_flat_layout_of_earlier_versions_still_reads():
    old = {"image_size": 52, "conv": [[32, 5], [64, 5], [64, 3], [128, 3]], "dense": 1024,
           "init": "fan_in", "loader": "groups", "group": {"alphabets": 4, "characters": 4,
           "drawers": 4, "one_shot_weight": 0.3}, "batches_per_epoch": 720, "batch_size": 64,
           "pairs_per_epoch": 25600, "hard_negative_fraction": 0.5, "rotations": 4, "epochs": 40,
           "time_budget_minutes": 55, "val_trials": 500, "optim": {"lr": 0.08, "momentum": 0.9,
           "momentum_epochs": 5, "l2": 0.0001, "lr_decay": 0.93, "average": 0.9995},
           "preset": "small", "test_trials": 400, "preset_given": False}
    assert config_from_dict(old) == PRESETS["small"]


def test_command_line_overrides_are_checked_as_a_whole():
    with pytest.raises(ConfigError, match="--distortions: loader.distortions = k"):
        with_overrides(PRESETS["small"], {"loader": {"distortions": 2}}, "--distortions")
    assert with_overrides(PRESETS["tiny"], {"run": {"epochs": 3}}).run.epochs == 3


def test_config_files_in_json_and_toml(tmp_path):
    (tmp_path / "a.json").write_text('{"optim": {"lr": 0.1}}')
    assert read_config_file(tmp_path / "a.json") == {"optim": {"lr": 0.1}}
    (tmp_path / "b.toml").write_text("[optim]\nlr = 0.1\n")
    assert read_config_file(tmp_path / "b.toml") == {"optim": {"lr": 0.1}}
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must hold an object of settings"):
        read_config_file(tmp_path / "c.json")
    (tmp_path / "d.json").write_text("{oops")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        read_config_file(tmp_path / "d.json")


def test_train_refuses_a_typo_in_the_config_before_anything_happens(tmp_path):
    config = tmp_path / "typo.json"
    config.write_text('{"optim": {"lrr": 0.1}}')
    out = tmp_path / "run"
    result = run("train", "--config", config, "--out", out, "--data", tmp_path / "nowhere")
    assert_one_line_error(result, 2, 'unknown key "lrr" in section optim; did you mean "lr"?')
    assert not out.exists()


def test_a_config_is_a_plain_frozen_dataclass():
    assert dataclasses.is_dataclass(Config) and Config.__dataclass_params__.frozen
