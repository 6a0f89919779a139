"""Clients of an exported model: TF Serving over REST or gRPC, or in-process (``bert_tf.Predictor``).

All three return the same thing, one dict of plain Python values per instance, so a caller (and
the tests) can switch between them freely.
"""
import json
import urllib.error
import urllib.request

from bert_tf.errors import UserError
from bert_tf.predictor import Predictor

REQUEST_FORMATS = ("instances", "inputs")


def _plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _rows(columns):
    """{name: [batch values]} -> [{name: value}] per instance."""
    names = list(columns)
    size = len(columns[names[0]]) if names else 0
    return [{name: columns[name][i] for name in names} for i in range(size)]


def _check_inputs(inputs):
    sizes = {name: len(values) for name, values in inputs.items()}
    if not sizes:
        raise UserError("no input given: pass --text (and --text_pair), or --question and --context")
    if len(set(sizes.values())) != 1:
        raise UserError(f"inputs differ in length {sizes}: give each input once per instance")


# -- in-process --------------------------------------------------------------------------------------

def predict_local(path, inputs, signature="serving_default"):
    """Runs ``inputs`` ({name: [strings]}) in-process through ``bert_tf.Predictor`` on ``path``: an
    export version directory, a TFLite export or a fine-tuned model directory."""
    _check_inputs(inputs)
    return _rows({name: _plain(value) for name, value in Predictor.from_dir(path).run(inputs, signature).items()})


# -- REST ----------------------------------------------------------------------------------------------

def rest_url(server, model_name, version=None):
    """TF Serving's predict URL for a model (and version)."""
    base = f"{server.rstrip('/')}/v1/models/{model_name}"
    return f"{base}/versions/{version}:predict" if version else f"{base}:predict"


def rest_request(inputs, request_format="instances", signature="serving_default"):
    """The JSON body of a REST predict call: row ("instances") or columnar ("inputs") form."""
    _check_inputs(inputs)
    if request_format == "instances":
        return {"signature_name": signature, "instances": _rows(inputs)}
    if request_format == "inputs":
        return {"signature_name": signature, "inputs": dict(inputs)}
    raise UserError(f"--request_format={request_format} is not one of {', '.join(REQUEST_FORMATS)}")


def parse_rest_response(body, output_names=None):
    """TF Serving's REST reply -> [{output: value}] per instance.

    Row replies are {"predictions": [...]}, columnar ones {"outputs": ...}; a model with a single
    output sends bare values, which come back under ``output_names[0]`` (or "output").
    """
    if "error" in body:
        raise UserError(f"TF Serving answered an error: {body['error']}")
    single = (output_names or ["output"])[0]
    if "predictions" in body:
        return [p if isinstance(p, dict) else {single: p} for p in body["predictions"]]
    if "outputs" in body:
        outputs = body["outputs"]
        return _rows(outputs if isinstance(outputs, dict) else {single: outputs})
    raise UserError(f"unexpected TF Serving reply (no predictions/outputs): {json.dumps(body)[:200]}")


def predict_rest(server, model_name, inputs, request_format="instances", version=None, timeout=10.0,
                 signature="serving_default"):
    """POSTs to TF Serving's REST API; returns [{output: value}] per instance."""
    body = json.dumps(rest_request(inputs, request_format, signature)).encode("utf-8")
    url = rest_url(server, model_name, version)
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return parse_rest_response(json.load(response))
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", errors="replace")[:300]
        raise UserError(f"TF Serving at {url} answered HTTP {error.code}: {detail}") from None
    except (OSError, ValueError) as error:
        raise UserError(f"cannot reach TF Serving at {server} ({error}): start it or fix --server") from None


# -- gRPC ----------------------------------------------------------------------------------------------

def predict_grpc(address, model_name, inputs, version=None, timeout=10.0, signature="serving_default"):
    """Calls PredictionService/Predict (tensorflow-serving-api); returns [{output: value}] per instance."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    _check_inputs(inputs)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version:
        request.model_spec.version.value = int(version)
    for name, values in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(list(values), dtype=tf.string))
    target = address.split("://", 1)[-1]
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise UserError(f"gRPC Predict on {target} failed ({error.code().name}: {error.details()}): "
                            "check --server, --model_name and that TF Serving runs") from None
    return _rows({name: _plain(tf.make_ndarray(proto)) for name, proto in response.outputs.items()})


# -- printing ------------------------------------------------------------------------------------------

def describe(prediction, instance):
    """One human-readable line for a prediction of any task."""
    if "answer" in prediction:
        return f"{prediction['answer']}\t{prediction['score']:.3f}\t{instance.get('question', '')}"
    if "word_start" in prediction:
        words = instance["text"].split()
        tags = {index: tag for index, tag, start in zip(prediction["word_index"], prediction["tag"],
                                                        prediction["word_start"]) if start}
        return " ".join(f"{word}/{tags.get(i, '-')}" for i, word in enumerate(words))
    if "label" in prediction:
        return f"{prediction['label']}\t{max(prediction['probabilities']):.3f}\t{instance.get('text', '')}"
    if "score" in prediction:
        return f"{prediction['score']:.4f}\t{instance.get('text', '')}"
    return json.dumps(prediction)
