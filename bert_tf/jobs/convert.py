"""Convert any checkpoint the loader reads into a Hugging Face directory or a keras-hub preset.

Sources: a Hugging Face/bert_tf directory (tf_model.h5), a directory with PyTorch
model.safetensors, a keras-hub BERT preset, a google-research/bert TF1 checkpoint
(``bert_model.ckpt``), a TF Model Garden TF2 checkpoint, or ``hub:<id>``.
Pretraining heads (masked-LM and next-sentence) are kept when the source has them; a bert_tf
fine-tuned model keeps its task head and label map; otherwise the encoder (with pooler) is written.
A keras-hub preset holds the encoder (BertBackbone) and its tokenizer.
"""
import numpy as np
import tensorflow as tf
from absl import flags as absl_flags

from bert_tf import config as config_lib
from bert_tf import fileio, tokenization
from bert_tf.errors import UserError
from bert_tf.modeling import checkpoints, keras_hub_format, tasks
from bert_tf.modeling.pretraining import BertPretrainingModel
from bert_tf.tasks import registry

OUTPUT_FORMATS = ("hf", "keras_hub")


def define_flags(fv=absl_flags.FLAGS):
    f = absl_flags
    f.DEFINE_string("init_checkpoint", None, "The checkpoint to convert: model directory, keras-hub preset, TF1/TF2 "
                    "checkpoint prefix (bert_model.ckpt) or its directory, or hub:<id> (downloads).", flag_values=fv)
    f.DEFINE_string("output_dir", None, "Where to write the converted directory.", flag_values=fv)
    f.DEFINE_enum("output_format", "hf", OUTPUT_FORMATS, "hf: Hugging Face (config.json, tf_model.h5, vocab.txt); "
                  "keras_hub: a keras-hub BertBackbone preset (keras_hub.models.BertBackbone.from_preset).",
                  flag_values=fv)
    f.DEFINE_string("bert_config_file", None, "Config of the checkpoint (default: config.json or "
                    "bert_config.json next to it).", flag_values=fv)
    f.DEFINE_string("vocab_file", None, "vocab.txt to ship with the model (default: the one next to the source).",
                    flag_values=fv)
    f.DEFINE_bool("do_lower_case", None, "Tokenizer casing to record (default: the source's tokenizer config, else "
                  "what the vocab shows); a value contradicting either is refused.", flag_values=fv)
    f.DEFINE_bool("allow_partial_init", False, "Write the model even when some encoder weights are not in the "
                  "checkpoint (they are left random). Off: such a conversion stops.", flag_values=fv)
    f.DEFINE_bool("overwrite_output_dir", False, "Replace a non-empty --output_dir that bert_tf did not write.",
                  flag_values=fv)


def _model_for(source, state, config):
    """The model that keeps what the source holds: a bert_tf task model with its head, the
    pretraining model when masked-LM weights are present, else the bare encoder."""
    meta = None
    directory = checkpoints.local_source(source)
    if tf.io.gfile.isdir(directory) and tf.io.gfile.exists(f"{directory}/{checkpoints.MODEL_META}"):
        meta = checkpoints.read_model_meta(directory)
    task = (meta or {}).get("task")
    if task and task not in ("encoder", "pretraining"):
        return registry.build_task_model(task, config, num_labels=len(meta.get("labels") or [None])), meta
    if any(name.startswith("mlm___cls/") for name in state):
        return BertPretrainingModel(config), meta
    return tasks.BertTaskModel(config), meta


def _probe_features(config, seed=0):
    rng = np.random.RandomState(seed)
    ids = rng.randint(5, config.vocab_size, size=(2, 16)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 11:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": (np.arange(16) >= 8).astype(np.int32)[None]
            .repeat(2, 0)}


def _write_keras_hub(model, flags, vocab_file, lower, meta):
    """Writes the preset, loads it back with keras-hub and measures its encoder against ours."""
    if not vocab_file:
        raise UserError("a keras-hub preset needs the vocabulary: pass --vocab_file")
    keras_hub_format.write_preset(model, flags.output_dir, vocab_file, lower, meta=meta)
    features = _probe_features(model.config)
    ours = model.bert(**{k: tf.constant(v) for k, v in features.items()}).last_hidden_state.numpy()
    backbone = keras_hub_format._load_backbone(flags.output_dir)
    theirs = keras_hub_format.encoder_outputs(backbone, features)
    mask = features["attention_mask"].astype(bool)
    result = {"max_abs_diff": float(np.abs(ours - theirs)[mask].max())}
    if model.config.hidden_act not in keras_hub_format.TANH_GELU:
        result["note"] = (f"the model uses hidden_act={model.config.hidden_act} (exact GELU); keras-hub's BertBackbone "
                          "always uses the tanh approximation, hence max_abs_diff")
    return result


def run(flags):
    """Converts; returns {'output_dir', 'format', 'heads', 'missing', 'matched', 'vocab_file', ...}."""
    if not flags.init_checkpoint:
        raise UserError("--init_checkpoint is required: the checkpoint to convert")
    if not flags.output_dir:
        raise UserError("--output_dir is required")
    source = flags.init_checkpoint
    kind = checkpoints.source_kind(source)
    inputs = {"--init_checkpoint": None if kind == "hub" else source, "--vocab_file": flags.vocab_file,
              "--bert_config_file": flags.bert_config_file}
    if kind in ("tf1", "tf2") and not tf.io.gfile.isdir(source):
        inputs["--init_checkpoint's directory"] = checkpoints._directory_of(source)
    fileio.check_outputs_apart({"--output_dir": flags.output_dir}, inputs)
    fileio.check_replaceable_dir(flags.output_dir, checkpoints.MODEL_META, flags.overwrite_output_dir)
    if flags.bert_config_file:
        config = config_lib.load_bert_config(flags.bert_config_file)
    else:
        config = checkpoints.load_checkpoint_config(source)
    stored_vocab, stored_lower = checkpoints.tokenizer_settings(source)
    vocab_file = flags.vocab_file or stored_vocab
    if flags.vocab_file and flags.vocab_file != stored_vocab:
        stored_lower = None
    lower = tokenization.resolve_lower_case(vocab_file, flags.do_lower_case, stored_lower) if vocab_file else \
        (True if flags.do_lower_case is None else flags.do_lower_case)
    state = checkpoints.read_state(source)
    model, meta = _model_for(source, state, config)
    report = checkpoints.assign_state(model, state, source, allow_partial_init=flags.allow_partial_init)
    meta = dict(meta or {}, converted_from=source)
    meta.pop("task", None)
    result = {"output_dir": flags.output_dir, "format": flags.output_format, "source_format": kind,
              "heads": isinstance(model, BertPretrainingModel) or model.task != "encoder",
              "missing": report["missing_heads"], "matched": report["matched"],
              "encoder_weights": report["encoder_weights"], "vocab_file": vocab_file, "do_lower_case": lower}
    if flags.output_format == "keras_hub":
        result.update(_write_keras_hub(model, flags, vocab_file, lower, meta))
    else:
        checkpoints.save_hf(model, flags.output_dir, vocab_file=vocab_file, do_lower_case=lower, meta=meta)
    return result
