import os


def test_tiny_checkpoint_is_a_loadable_hf_dir(tiny_checkpoint):
    from transformers import TFBertModel

    assert sorted(os.listdir(tiny_checkpoint)) == ["bert_tf.json", "config.json", "tf_model.h5",
                                                   "tokenizer_config.json", "vocab.txt"]
    model = TFBertModel.from_pretrained(tiny_checkpoint)
    assert model.config.hidden_size == 64
