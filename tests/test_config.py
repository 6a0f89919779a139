import json

import pytest

from bert_tf import config
from bert_tf.errors import UserError


@pytest.mark.parametrize("name, layers, hidden, heads", [
    ("tiny", 2, 128, 2), ("mini", 4, 256, 4), ("small", 4, 512, 8), ("medium", 8, 512, 8),
    ("base", 12, 768, 12), ("large", 24, 1024, 16)])
def test_presets_have_the_published_shapes(name, layers, hidden, heads):
    cfg = config.load_bert_config(name)
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads) == (layers, hidden, heads)
    assert cfg.intermediate_size == 4 * hidden


def test_vocab_size_follows_the_vocab():
    assert config.load_bert_config("tiny", vocab_size=2000).vocab_size == 2000


def test_unknown_preset_and_unknown_keys_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown model config 'huge'.*tiny"):
        config.load_bert_config("huge")
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"hidden_size": 64, "num_hidden_layer": 2}))
    with pytest.raises(UserError, match=r"unknown keys \['num_hidden_layer'\]"):
        config.load_bert_config(str(path))


def test_seq_length_above_positions_is_refused():
    cfg = config.load_bert_config("tiny")
    with pytest.raises(UserError, match="exceeds the model's max_position_embeddings=512"):
        config.check_seq_length(cfg, 1024)
