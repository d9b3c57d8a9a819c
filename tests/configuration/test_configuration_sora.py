"""Sora's configs: the towers share one base config, and the saved `config.json` format is what it was."""

import json
from pathlib import Path

import pytest
from conftest import FIXTURES_DIR, SCRIPTS_DIR

from sora_hf import SoraAudioConfig, SoraConfig, SoraVisionConfig, packaged_checkpoint_path
from sora_hf.configuration_sora import SoraTowerConfig

FIXTURES = FIXTURES_DIR / "reference_outputs"
SHARED_FIELDS = [
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "initializer_range",
    "layer_norm_eps",
]


def reference_configs() -> dict[str, dict]:
    import sys

    sys.path.insert(0, str(SCRIPTS_DIR))
    from reference_outputs import CONFIGS

    return CONFIGS


def test_the_towers_share_one_base_config():
    """The nine layer fields are declared once, on `SoraTowerConfig`; each tower adds only its input's fields."""
    assert set(SHARED_FIELDS) <= set(vars(SoraTowerConfig)["__annotations__"])
    for tower in (SoraVisionConfig, SoraAudioConfig):
        assert issubclass(tower, SoraTowerConfig)
        assert not set(SHARED_FIELDS) & set(vars(tower)["__annotations__"]), tower.__name__
    assert set(vars(SoraVisionConfig)["__annotations__"]) == {
        "image_size",
        "patch_size",
        "num_channels",
        "patch_embedding_type",
    }
    assert set(vars(SoraAudioConfig)["__annotations__"]) == {"num_mel_bins", "max_source_positions"}


@pytest.mark.parametrize("tower", [SoraVisionConfig, SoraAudioConfig], ids=lambda tower: tower.__name__)
def test_inherited_fields_are_still_checked_on_assignment(tower):
    config = tower(hidden_size=16, num_attention_heads=4, intermediate_size=32)
    with pytest.raises(ValueError, match="must be divisible by num_attention_heads"):
        config.hidden_size = 18
    assert config.hidden_size == 16  # undone
    with pytest.raises(ValueError, match=rf"{tower.__name__}.intermediate_size must be a positive integer"):
        tower(intermediate_size=0)


def test_saved_config_json_is_unchanged():
    """Every reference config (text, seq2seq, distillation heads, image + audio towers) serialises to the JSON the
    code before the tower base wrote (fixtures/reference_outputs/configs.json), and loads back equal."""
    expected = json.loads((FIXTURES / "configs.json").read_text())
    for name, fields in reference_configs().items():
        saved = json.loads(SoraConfig(**fields).to_json_string())
        saved.pop("transformers_version", None)
        assert saved == expected[name], name
        assert SoraConfig.from_dict(saved).to_dict() == SoraConfig(**fields).to_dict(), name


def test_the_packaged_config_round_trips():
    path = Path(packaged_checkpoint_path("sora")) / "config.json"
    on_disk = json.loads(path.read_text())
    loaded = json.loads(SoraConfig.from_pretrained("sora").to_json_string())  # what save_pretrained writes
    for key in ("transformers_version",):
        on_disk.pop(key, None)
        loaded.pop(key, None)
    assert loaded == on_disk
