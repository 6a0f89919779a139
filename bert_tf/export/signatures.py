"""Per-task serving signatures: raw text in (``serving_default``) and token ids in (``serve_ids``).

The module built here holds the model, the in-graph tokenizer and the label names; once saved
it needs only TensorFlow and TensorFlow Text to load and run (no bert_tf, no transformers).
"""
import tensorflow as tf

from bert_tf.tokenization import GraphTokenizer

IDS_SIGNATURE = [tf.TensorSpec([None, None], tf.int32, name=n)
                 for n in ("input_ids", "attention_mask", "token_type_ids")]
TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")
PAIR_SPEC = tf.TensorSpec([None], tf.string, name="text_pair")


class ServingModule(tf.Module):
    """Wraps a task model with its tokenizer and head-specific post-processing."""

    def __init__(self, model, task, vocab_file, do_lower_case, max_seq_length, labels=None, text_pair=False):
        super().__init__(name="bert_tf_serving")
        self.model = model
        self.task = task
        self.text_pair = text_pair
        self.tokenizer = GraphTokenizer(vocab_file, do_lower_case, max_seq_length)
        self.labels = tf.constant(labels or [""], tf.string)

    def postprocess(self, outputs):
        if self.task == "regression":
            return {"score": outputs["score"]}
        probabilities = outputs["probabilities"]
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {"logits": outputs["logits"], "probabilities": probabilities, "label_id": label_id,
                "label": tf.gather(self.labels, label_id)}

    def run_ids(self, input_ids, attention_mask, token_type_ids):
        outputs = self.model({"input_ids": input_ids, "attention_mask": attention_mask,
                              "token_type_ids": token_type_ids}, training=False)
        return self.postprocess(outputs)

    def signatures(self):
        serve_ids = tf.function(self.run_ids, input_signature=IDS_SIGNATURE)
        if self.text_pair:
            serve_text = tf.function(lambda text, text_pair: self.run_ids(**self.tokenizer(text, text_pair)),
                                     input_signature=[TEXT_SPEC, PAIR_SPEC])
        else:
            serve_text = tf.function(lambda text: self.run_ids(**self.tokenizer(text)), input_signature=[TEXT_SPEC])
        return {"serving_default": serve_text, "serve_ids": serve_ids}
