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
