"""Configuration: precedence flag > NERCTL_* env > TOML file > default, and validation."""
import dataclasses

import pytest

from nerctl.config import TrainConfig, read_config_file, resolve_config
from nerctl.core.errors import InputError
from conftest import REPO


def test_builtin_defaults_match_the_shipped_default_config():
    from_file = resolve_config(REPO / "configs" / "mitmovie.toml", environ={})
    assert from_file == TrainConfig()


def test_every_shipped_config_is_valid():
    for path in sorted((REPO / "configs").glob("*.toml")):
        assert resolve_config(path, environ={}) is not None, path


def test_precedence_flag_over_env_over_file_over_default(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("epochs = 7\nbatch_size = 8\nlr = 0.001\n")
    env = {"NERCTL_BATCH_SIZE": "16", "NERCTL_LR": "0.002"}
    config = resolve_config(path, {"lr": 0.003, "seed": None}, environ=env)
    assert config.epochs == 7  # file over default
    assert config.batch_size == 16  # env over file
    assert config.lr == 0.003  # flag over env
    assert config.seed == TrainConfig().seed  # an unset flag changes nothing


def test_train_table_is_accepted(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[train]\nepochs = 2\n")
    assert read_config_file(path) == {"epochs": 2}


@pytest.mark.parametrize(
    "content, message",
    [
        ("epoch = 3\n", "unknown key(s) epoch"),
        ("epochs = 'three'\n", "epochs must be int"),
        ("epochs = 0\n", "epochs must be at least 1"),
        ("lr = -1e-5\n", "lr must be positive"),
        ("batch_size = 0\n", "batch_size must be at least 1"),
        ("dev_fraction = 1.5\n", "dev_fraction must be between 0 and 1"),
        ("run_name = '../escape'\n", "invalid run name"),
        ("epochs = \n", "invalid TOML"),
    ],
)
def test_bad_config_values_are_input_errors(tmp_path, content, message):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(InputError) as err:
        resolve_config(path, environ={})
    assert message in str(err.value)


def test_bad_environment_value_names_the_variable():
    with pytest.raises(InputError, match="NERCTL_EPOCHS: epochs must be int"):
        resolve_config(environ={"NERCTL_EPOCHS": "many"})


def test_config_round_trips_through_dict():
    config = TrainConfig(epochs=5, train_file="x.bio")
    assert TrainConfig(**config.to_dict()) == config
    assert set(config.to_dict()) == {f.name for f in dataclasses.fields(TrainConfig)}


def test_boolean_values_from_env_file_and_flag(tmp_path):
    assert resolve_config(environ={"NERCTL_FREEZE_EMBEDDINGS": "yes"}).freeze_embeddings is True
    path = tmp_path / "c.toml"
    path.write_text("freeze_embeddings = true\n")
    assert resolve_config(path, {"freeze_embeddings": False}, environ={}).freeze_embeddings is False
    with pytest.raises(InputError, match="NERCTL_FREEZE_EMBEDDINGS: freeze_embeddings must be true or false"):
        resolve_config(environ={"NERCTL_FREEZE_EMBEDDINGS": "maybe"})
    path.write_text("freeze_embeddings = 1\n")
    with pytest.raises(InputError, match="freeze_embeddings must be true or false"):
        resolve_config(path, environ={})
