"""Query an exported model: a running TF Serving (REST) or, with --local_saved_model, in-process.

Example:
  python tools/serving_client.py --local_saved_model=/tmp/serving/sst2/1 --text="a gripping film"
  python tools/serving_client.py --server=http://localhost:8501 --model_name=sst2 --text="dull"
"""
import json
import urllib.request

import bert_tf  # noqa: F401
from absl import flags

from bert_tf import cli
from bert_tf.errors import UserError

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("text", None, "Text to classify (repeat the flag for a batch).")
flags.DEFINE_string("local_saved_model", None, "Run against this SavedModel version directory in-process.")
flags.DEFINE_string("server", "http://localhost:8501", "TF Serving REST address.")
flags.DEFINE_string("model_name", "bert", "Model name on the server.")
flags.DEFINE_float("timeout", 10.0, "REST timeout in seconds.")


def predict_local(path, texts):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)

    loaded = tf.saved_model.load(path)
    outputs = loaded.signatures["serving_default"](text=tf.constant(texts))
    return [{k: _plain(v[i].numpy()) for k, v in outputs.items()} for i in range(len(texts))]


def predict_rest(server, model_name, texts, timeout):
    body = json.dumps({"instances": [{"text": t} for t in texts]}).encode()
    request = urllib.request.Request(f"{server}/v1/models/{model_name}:predict", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)["predictions"]
    except OSError as error:
        raise UserError(f"cannot reach TF Serving at {server} ({error}): start it or fix --server") from None


def _plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value.tolist() if hasattr(value, "tolist") else value


def main(_):
    if not FLAGS.text:
        raise UserError("--text is required (repeat it for several texts)")
    if FLAGS.local_saved_model:
        predictions = predict_local(FLAGS.local_saved_model, FLAGS.text)
    else:
        predictions = predict_rest(FLAGS.server, FLAGS.model_name, FLAGS.text, FLAGS.timeout)
    for text, prediction in zip(FLAGS.text, predictions):
        if "label" in prediction:
            probability = max(prediction["probabilities"])
            print(f"{prediction['label']}\t{probability:.3f}\t{text}")
        else:
            print(f"{json.dumps(prediction)}\t{text}")


if __name__ == "__main__":
    cli.run(main)
