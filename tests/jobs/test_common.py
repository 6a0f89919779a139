import re

import pytest

from bert_tf.errors import UserError
from bert_tf.jobs import common
from bert_tf.modeling.tasks import SequenceClassifier


def test_freeze_embeddings_leaves_only_encoder_and_head_trainable(tiny_checkpoint, vocab_file):
    from bert_tf.modeling import checkpoints
    from bert_tf.tokenization import HostTokenizer

    config = checkpoints.load_checkpoint_config(tiny_checkpoint)
    tokenizer = HostTokenizer(vocab_file)
    free = common.load_init(SequenceClassifier(config, num_labels=2),
                            common.ModelSetup(config, tokenizer, tiny_checkpoint))
    frozen = common.load_init(SequenceClassifier(config, num_labels=2),
                              common.ModelSetup(config, tokenizer, tiny_checkpoint, freeze_embeddings=True))
    names = [v.name for v in frozen.trainable_variables]
    assert not [n for n in names if "/embeddings/" in n]
    assert any("classifier" in n for n in names) and any("encoder" in n for n in names)
    embedding_weights = sum(int(v.shape.num_elements()) for v in free.bert.embeddings.weights)
    assert sum(int(v.shape.num_elements()) for v in free.trainable_variables) - \
        sum(int(v.shape.num_elements()) for v in frozen.trainable_variables) == embedding_weights


def test_freeze_layers_trains_only_the_layers_above(tiny_checkpoint, vocab_file):
    from bert_tf.modeling import checkpoints
    from bert_tf.tokenization import HostTokenizer

    config = checkpoints.load_checkpoint_config(tiny_checkpoint)
    model = common.load_init(SequenceClassifier(config, num_labels=2),
                             common.ModelSetup(config, HostTokenizer(vocab_file), tiny_checkpoint, freeze_layers=1))
    names = [v.name for v in model.trainable_variables]
    assert all(any(part in name for part in ("/layer_._1/", "/pooler/", "classifier")) for name in names), names
    assert sum("/layer_._1/" in name for name in names) == 16  # q, k, v, 3 dense, 2 LayerNorms: kernels/biases
    assert sum("/pooler/" in name for name in names) == 2 and sum("classifier" in name for name in names) == 2


@pytest.mark.parametrize("extra,message", [
    (["--freeze_layers=3"], "--freeze_layers=3 must be between 0 and the model's 2 encoder layers"),
    (["--freeze_layers=1", "--lora_rank=2"], "--freeze_layers excludes --lora_rank and --freeze_encoder"),
])
def test_bad_freeze_layers_is_a_user_error(extra, message, tiny_checkpoint, flag_values):
    from bert_tf.jobs import classifier

    fv = flag_values(classifier.define_flags, [f"--init_checkpoint={tiny_checkpoint}", *extra])
    with pytest.raises(UserError, match=re.escape(message)):
        common.resolve_model(fv)
