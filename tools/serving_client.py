"""Query an exported model: TF Serving over REST or gRPC, or, with --local_saved_model, in-process.

Examples:
  python tools/serving_client.py --local_saved_model=/tmp/serving/sst2/1 --text="a gripping film"
  python tools/serving_client.py --server=http://localhost:8501 --model_name=sst2 --text="dull" --text="fun"
  python tools/serving_client.py --server=http://localhost:8501 --model_name=sst2 --request_format=inputs --text=ok
  python tools/serving_client.py --protocol=grpc --server=localhost:8500 --model_name=sst2 --text="dull"
  python tools/serving_client.py --local_saved_model=/tmp/serving/squad/1 --question=Who? --context="Ann wrote it."
"""
import json

import bert_tf  # noqa: F401
from absl import flags

from bert_tf import cli
from bert_tf.errors import UserError
from bert_tf.export import client

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("text", None, "Text to send (repeat the flag for a batch).")
flags.DEFINE_multi_string("text_pair", None, "Second text of sentence-pair models, once per --text.")
flags.DEFINE_multi_string("question", None, "Question for a QA model (repeat with --context for a batch).")
flags.DEFINE_multi_string("context", None, "Context passage for a QA model, once per --question.")
flags.DEFINE_string("local_saved_model", None, "Run in-process (bert_tf.Predictor) on this export version directory, "
                    "TFLite export directory or fine-tuned model directory instead of calling a server.")
flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "How to reach TF Serving.")
flags.DEFINE_string("server", None, "TF Serving address (default http://localhost:8501 for REST, "
                    "localhost:8500 for gRPC).")
flags.DEFINE_string("model_name", "bert", "Model name on the server (models.config or --model_name).")
flags.DEFINE_integer("model_version", None, "Ask for this version (default: the server's latest).")
flags.DEFINE_enum("request_format", "instances", list(client.REQUEST_FORMATS),
                  "REST body: row form ('instances') or columnar form ('inputs').")
flags.DEFINE_string("signature_name", "serving_default", "Signature to call.")
flags.DEFINE_float("timeout", 10.0, "Request timeout in seconds.")
flags.DEFINE_bool("json", False, "Print each full prediction as JSON instead of a summary line.")


def main(_):
    inputs = {name: list(getattr(FLAGS, name)) for name in ("text", "text_pair", "question", "context")
              if getattr(FLAGS, name)}
    for name, values in inputs.items():
        for value in values:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                # Python keeps command-line bytes that are not UTF-8 as lone surrogates.
                raise UserError(f"--{name} {value.encode('utf-8', 'surrogateescape')!r} is not UTF-8: pass the "
                                "text in UTF-8 (re-encode it, e.g. with iconv)") from None
    if FLAGS.local_saved_model:
        predictions = client.predict_local(FLAGS.local_saved_model, inputs, FLAGS.signature_name)
    elif FLAGS.protocol == "grpc":
        predictions = client.predict_grpc(FLAGS.server or "localhost:8500", FLAGS.model_name, inputs,
                                          FLAGS.model_version, FLAGS.timeout, FLAGS.signature_name)
    else:
        predictions = client.predict_rest(FLAGS.server or "http://localhost:8501", FLAGS.model_name, inputs,
                                          FLAGS.request_format, FLAGS.model_version, FLAGS.timeout,
                                          FLAGS.signature_name)
    instances = [dict(zip(inputs, values)) for values in zip(*inputs.values())]
    for prediction, instance in zip(predictions, instances):
        print(json.dumps(prediction, ensure_ascii=False) if FLAGS.json else client.describe(prediction, instance))


if __name__ == "__main__":
    cli.run(main)
