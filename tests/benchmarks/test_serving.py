"""The serving benchmark runs end to end on a tiny classifier (figures are not asserted: timing)."""
import json
import os

import tf_keras

from benchmarks import serving
from bert_tf.modeling import checkpoints
from bert_tf.modeling.tasks import SequenceClassifier


def test_serving_benchmark_compares_export_with_hf_on_the_same_weights(tmp_path, tiny_checkpoint, tiny_config,
                                                                         flag_values, capsys):
    tf_keras.utils.set_random_seed(0)
    model = SequenceClassifier(tiny_config, num_labels=2).build_with_dummies()
    checkpoints.load_weights(model, tiny_checkpoint)
    model_dir = checkpoints.save_hf(model, str(tmp_path / "model"), vocab_file=os.path.join(tiny_checkpoint,
                                                                                              "vocab.txt"),
                                    meta={"task": "classification", "labels": ["neg", "pos"], "max_seq_length": 32})
    fv = flag_values(serving.define_flags, [f"--model_dir={model_dir}", "--requests=4", "--batches=2",
                                            "--batch_size=8", "--warmup=1", "--max_seq_length=32",
                                            f"--output_json={tmp_path / 'bench.json'}"])
    results = serving.run(fv)
    assert results["max_abs_probability_difference"] < 1e-5
    for path in ("bert_tf_export", "hf_python"):
        assert results[path]["batch_1"]["p50_ms"] > 0 and results[path]["batch_8"]["examples_per_s"] > 0
    assert set(results["ratios"]) == {"p50_latency_batch_1", "p99_latency_batch_1", "throughput_batch_8"}
    with open(tmp_path / "bench.json") as f:
        assert json.load(f)["ratios"] == results["ratios"]
    lite = results["tflite"]
    assert lite["texts"] == 854 and lite["threads"] == 1
    assert lite["float32"]["label_agreement"] == 1.0 and lite["float32"]["max_abs_probability_difference"] < 1e-5
    assert 0 < lite["int8_dynamic"]["size_mb"] < 0.4 * lite["float32"]["size_mb"]
    assert lite["int8_dynamic"]["batch_1"]["p50_ms"] > 0
    printed = capsys.readouterr().out
    assert "TFLite interpreter (1 thread(s), host tokenization included) against the SavedModel on all 854" in printed
    assert "p50 latency ratio (HF / export, goal >= 3)" in printed
    assert f"reproduce: python tools/benchmark.py serving --model_dir={model_dir}" in printed
