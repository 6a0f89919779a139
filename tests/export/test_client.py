"""serving_client: in-process, REST (both body forms) and gRPC against fake TF Serving front ends
on 127.0.0.1 that run the real SavedModel, plus the command line."""
import concurrent.futures
import http.server
import json
import os
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf

from bert_tf.errors import UserError
from bert_tf.export import client
from tests.export.conftest import LABELS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEXTS = ["a gripping, beautifully acted film", "dull"]


@pytest.fixture(scope="module")
def signature(classifier_export):
    import tensorflow_text  # noqa: F401

    return tf.saved_model.load(classifier_export).signatures["serving_default"]


def _run(signature, inputs):
    outputs = signature(**{k: tf.constant(v, tf.string) for k, v in inputs.items()})
    return {k: client._plain(v.numpy()) for k, v in outputs.items()}


class _RestHandler(http.server.BaseHTTPRequestHandler):
    """Answers /v1/models/NAME[/versions/N]:predict the way TF Serving's REST API does."""
    timeout = 10

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append((self.path, body))
        if "instances" in body:
            inputs = {name: [row[name] for row in body["instances"]] for name in body["instances"][0]}
            columns = _run(self.server.signature, inputs)
            reply = {"predictions": client._rows(columns)}
        else:
            reply = {"outputs": _run(self.server.signature, body["inputs"])}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def rest_server(signature):
    server = http.server.HTTPServer(("127.0.0.1", 0), _RestHandler)
    server.signature, server.seen = signature, []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_local_predictions_are_the_signature_outputs(classifier_export, signature):
    rows = client.predict_local(classifier_export, {"text": TEXTS})
    expected = _run(signature, {"text": TEXTS})
    assert rows == client._rows(expected)
    assert [r["label"] for r in rows] == [LABELS[i] for i in expected["label_id"]]


@pytest.mark.parametrize("request_format", ["instances", "inputs"])
def test_rest_request_json_and_parsed_reply(rest_server, classifier_export, request_format):
    address = f"http://127.0.0.1:{rest_server.server_port}"
    rows = client.predict_rest(address, "sst2", {"text": TEXTS}, request_format=request_format, timeout=30)
    assert rows == client.predict_local(classifier_export, {"text": TEXTS})
    path, body = rest_server.seen[-1]
    assert path == "/v1/models/sst2:predict"
    if request_format == "instances":
        assert body == {"signature_name": "serving_default", "instances": [{"text": t} for t in TEXTS]}
    else:
        assert body == {"signature_name": "serving_default", "inputs": {"text": TEXTS}}
    client.predict_rest(address, "sst2", {"text": TEXTS[:1]}, version=3, timeout=30)
    assert rest_server.seen[-1][0] == "/v1/models/sst2/versions/3:predict"


def test_rest_replies_with_a_single_output_and_errors():
    assert client.parse_rest_response({"predictions": [0.5, 0.25]}, ["score"]) == [{"score": 0.5}, {"score": 0.25}]
    assert client.parse_rest_response({"outputs": [0.5]}, ["score"]) == [{"score": 0.5}]
    with pytest.raises(UserError, match="TF Serving answered an error: Servable not found"):
        client.parse_rest_response({"error": "Servable not found for request: Latest(bert)"})


def test_unreachable_server_is_a_user_error():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UserError, match="cannot reach TF Serving"):
        client.predict_rest(f"http://127.0.0.1:{port}", "bert", {"text": ["x"]}, timeout=2)


def test_grpc_predict_against_a_prediction_service(signature, classifier_export):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    seen = []

    class Service(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            seen.append(request)
            inputs = {k: [v.decode() for v in tf.make_ndarray(p)] for k, p in request.inputs.items()}
            outputs = signature(**{k: tf.constant(v) for k, v in inputs.items()})
            response = predict_pb2.PredictResponse()
            for name, value in outputs.items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        rows = client.predict_grpc(f"127.0.0.1:{port}", "sst2", {"text": TEXTS}, version=2, timeout=30)
    finally:
        server.stop(grace=None)
    local = client.predict_local(classifier_export, {"text": TEXTS})
    assert [r["label"] for r in rows] == [r["label"] for r in local]
    np.testing.assert_allclose([r["probabilities"] for r in rows], [r["probabilities"] for r in local], atol=1e-6)
    assert (seen[0].model_spec.name, seen[0].model_spec.signature_name, seen[0].model_spec.version.value) == \
        ("sst2", "serving_default", 2)


def test_describe_lines_for_tagging_and_qa(exports):
    tagged = client.predict_local(exports["tagging"], {"text": ["Anne lives in Berlin"]})[0]
    line = client.describe(tagged, {"text": "Anne lives in Berlin"})
    tags = dict(w.rsplit("/", 1) for w in line.split(" "))
    assert list(tags) == ["Anne", "lives", "in", "Berlin"] and set(tags.values()) <= {"O", "B-PER", "I-PER", "B-LOC"}
    answered = client.predict_local(exports["squad"], {"question": ["Who?"], "context": ["Anne wrote it."]})[0]
    answer, score, question = client.describe(answered, {"question": "Who?"}).split("\t")
    assert answer in "Anne wrote it." and answer and question == "Who?"
    assert float(score) == pytest.approx(answered["score"], abs=1e-3)


def test_command_line_local_and_error_exit(classifier_export):
    tool = os.path.join(REPO, "tools", "serving_client.py")
    done = subprocess.run([sys.executable, tool, f"--local_saved_model={classifier_export}", "--text=dull",
                           "--text=a gripping film"], capture_output=True, text=True, timeout=180, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().split("\n")
    local = client.predict_local(classifier_export, {"text": ["dull", "a gripping film"]})
    assert lines == [f"{p['label']}\t{max(p['probabilities']):.3f}\t{t}"
                     for p, t in zip(local, ["dull", "a gripping film"])]
    failed = subprocess.run([sys.executable, tool, f"--local_saved_model={classifier_export}"],
                            capture_output=True, text=True, timeout=180, cwd=REPO)
    assert failed.returncode == 2 and "error: no input given" in failed.stderr
