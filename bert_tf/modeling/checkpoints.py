"""The one checkpoint loader and the Hugging Face format writer.

Sources ``--init_checkpoint`` may name:
* a Hugging Face directory with TF weights (``tf_model.h5``), including bert_tf outputs;
* a directory with PyTorch ``model.safetensors`` (read with numpy; torch is never needed);
* a keras-hub BERT preset directory (keras_hub_format.py);
* a google-research/bert TF1 checkpoint (``bert_model.ckpt`` prefix or its directory);
* a TF Model Garden TF2 checkpoint of BertEncoder / BertPretrainerV2 (model_garden.py);
* ``hub:<id>`` such as ``hub:google-bert/bert-base-uncased``: the only form that downloads.

Every format is read into one dict keyed by our variable names (Hugging Face's TF names), and
``assign_state`` moves it into the model, refusing unless every encoder weight found its value.
"""
import json
import os
import re

import tensorflow as tf
from absl import logging

from bert_tf import config as config_lib
from bert_tf import fileio, tokenization
from bert_tf.errors import UserError
from bert_tf.modeling import keras_hub_format, lora, model_garden
from bert_tf.modeling.names import MODEL_META, _relative_name


def model_dir_of(path):
    """A run's output_dir or its model/ subdirectory -> the directory holding the saved model."""
    if path and tf.io.gfile.exists(os.path.join(path, "model", MODEL_META)):
        return os.path.join(path, "model")
    return path


HUB_PREFIX = "hub:"
# Dense kernels of every format land in Keras's [in, out] layout; PyTorch and TF1 heads store [out, in].
_HEAD_PREFIXES = ("mlm___cls/", "nsp___cls/", "classifier/", "qa_outputs/")


def _find_tf_prefix(path):
    """The checkpoint prefix of a TF1/TF2 checkpoint path or directory (bert_model.ckpt first), or None."""
    if tf.io.gfile.isdir(path):
        indexes = sorted(tf.io.gfile.glob(os.path.join(path, "*.index")),
                         key=lambda p: (not os.path.basename(p).startswith("bert_model.ckpt"), p))
        return indexes[0][: -len(".index")] if indexes else None
    if tf.io.gfile.exists(path + ".index"):
        return path
    return None


def _tf_checkpoint_kind(prefix):
    try:
        names = [name for name, _ in tf.train.list_variables(prefix)]
    except (tf.errors.OpError, ValueError) as error:
        raise UserError(f"cannot read the TF checkpoint {prefix} ({str(error).strip().splitlines()[0][:160]}): "
                        "its .index and .data-* files must both be present and complete") from None
    return "tf2" if model_garden.is_object_based(names) else "tf1"


def hub_id(source):
    """The model id of a ``hub:<id>`` source, else None."""
    if source and source.startswith(HUB_PREFIX):
        repo = source[len(HUB_PREFIX):]
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", repo):
            raise UserError(f"--init_checkpoint {source}: {repo!r} is not a Hugging Face hub id such as "
                            "hub:google-bert/bert-base-uncased")
        return repo
    return None


def source_kind(source):
    """Classifies ``--init_checkpoint`` without touching the network.

    hf_tf, safetensors, keras_hub, tf1 (google-research/bert), tf2 (TF Model Garden) or hub. Only
    a ``hub:`` source may download: a local path that does not exist is an error, never a hub id,
    so a typo cannot fetch someone else's weights.
    """
    if hub_id(source):
        return "hub"
    if tf.io.gfile.isdir(source):
        if tf.io.gfile.exists(os.path.join(source, "tf_model.h5")):
            return "hf_tf"
        if tf.io.gfile.exists(os.path.join(source, "model.safetensors")):
            _check_safetensors_header(os.path.join(source, "model.safetensors"))
            return "safetensors"
        if keras_hub_format.is_preset(source):
            return "keras_hub"
        prefix = _find_tf_prefix(source)
        if prefix:
            return _tf_checkpoint_kind(prefix)
        if tf.io.gfile.exists(os.path.join(source, "pytorch_model.bin")):
            raise UserError(f"{source} holds only pytorch_model.bin, which would need unpickling: convert it to "
                            "model.safetensors (or tf_model.h5) first")
        raise UserError(f"{source} holds no tf_model.h5, model.safetensors, keras-hub preset or TF checkpoint: point "
                        "--init_checkpoint at a model directory")
    prefix = _find_tf_prefix(source)
    if prefix:
        return _tf_checkpoint_kind(prefix)
    if tf.io.gfile.exists(source):
        raise UserError(f"--init_checkpoint {source} is a file, not a checkpoint: pass a model directory or a TF "
                        "checkpoint prefix (bert_model.ckpt, without .index)")
    looks_like_id = re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", source) and not os.path.splitext(source)[1]
    hint = f"; to download it from the Hugging Face hub, pass --init_checkpoint={HUB_PREFIX}{source}" \
        if looks_like_id else f" (only {HUB_PREFIX}<id> downloads from a model hub)"
    raise UserError(f"--init_checkpoint {source} does not exist: check the path{hint}")


def _check_safetensors_header(path):
    """A safetensors file is an 8-byte header length, a JSON header, then the tensors: a truncated or
    foreign file is refused here, before any model is built."""
    size = tf.io.gfile.stat(path).length
    with tf.io.gfile.GFile(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little") if size >= 8 else None
        header = f.read(length) if length is not None and 8 + length <= size else None
    try:
        entries = json.loads(header) if header is not None else None
    except (ValueError, UnicodeDecodeError):
        entries = None
    ends = [entry.get("data_offsets", [0, 0])[1] for name, entry in (entries or {}).items()
            if name != "__metadata__" and isinstance(entry, dict)] if isinstance(entries, dict) else None
    if ends is None or (ends and 8 + length + max(ends) > size):
        raise UserError(f"{path} is not a complete safetensors file ({size} bytes; truncated or another format): "
                        "download or convert it again")


_HUB_FILES = ("config.json", "vocab.txt", "tokenizer_config.json")
_resolved_hub = {}


def local_source(source):
    """``source`` itself, or for ``hub:<id>`` the local Hugging Face cache directory of its files.

    The one place a model hub is reached: config, vocab and weights (model.safetensors, else
    tf_model.h5) are fetched once and read like any local directory afterwards.
    """
    repo = hub_id(source)
    if repo is None:
        return source
    if repo not in _resolved_hub:
        import huggingface_hub

        try:
            directory = huggingface_hub.snapshot_download(repo, allow_patterns=list(_HUB_FILES) + ["model.safetensors"])
            if not tf.io.gfile.exists(os.path.join(directory, "model.safetensors")):
                directory = os.path.dirname(huggingface_hub.hf_hub_download(repo, "tf_model.h5"))
        except Exception as error:  # network, authentication and missing-file errors all end the same way
            raise UserError(f"cannot download {source} ({type(error).__name__}: {str(error).splitlines()[0][:160]}): "
                            "check the id and the network, or pass a local model directory") from None
        _resolved_hub[repo] = directory
    return _resolved_hub[repo]


def _directory_of(source):
    source = local_source(source)
    return source if tf.io.gfile.isdir(source) else os.path.dirname(source)


def checkpoint_config_path(source):
    """The config file that describes a source's architecture."""
    source_kind(source)
    directory = _directory_of(source)
    for name in ("config.json", "bert_config.json"):
        if tf.io.gfile.exists(os.path.join(directory, name)):
            return os.path.join(directory, name)
    raise UserError(f"{directory} has no config.json or bert_config.json describing the model")


def load_checkpoint_config(source):
    """The BertConfig of a source, whatever its format."""
    kind = source_kind(source)
    if kind == "keras_hub":
        return keras_hub_format.bert_config(local_source(source))
    config = config_lib.load_bert_config(checkpoint_config_path(source))
    if kind in ("tf1", "tf2") and config.hidden_act == "gelu":
        # google-research/bert and the Model Garden compute "gelu" as the tanh approximation;
        # Hugging Face's "gelu" is the exact (erf) form, its tanh form is "gelu_new".
        config.hidden_act = "gelu_new"
    return config


def _hf_h5_state(directory):
    import h5py

    state = {}
    with fileio.local_copy(os.path.join(directory, "tf_model.h5")) as local, h5py.File(local, "r") as f:
        for layer in f.attrs.get("layer_names", []):
            group = f[layer]
            for weight in group.attrs.get("weight_names", []):
                weight = weight.decode() if isinstance(weight, bytes) else weight
                state[_relative_name(weight)] = group[weight][()]
    return state


def _pt_name(key):
    """Hugging Face PyTorch state-dict key -> (our variable name, transpose) or None to skip.

    Sentence-transformers exports drop BertModel's "bert." prefix; the tied MLM decoder and the
    position-id buffer carry nothing of their own.
    """
    if not key.startswith(("bert.", "cls.", "classifier.", "qa_outputs.")):
        key = f"bert.{key}"
    if key.endswith("position_ids") or key.startswith("cls.predictions.decoder."):
        return None
    name = key.replace(".", "/")
    name = re.sub(r"/layer/(\d+)/", r"/layer_._\1/", name)
    name = re.sub(r"^cls/predictions/", "mlm___cls/predictions/", name)
    name = re.sub(r"^cls/seq_relationship/", "nsp___cls/seq_relationship/", name)
    if name.endswith("word_embeddings/weight"):
        return name, False
    if re.search(r"(position|token_type)_embeddings/weight$", name):
        return name[: -len("weight")] + "embeddings", False
    if re.search(r"LayerNorm/(weight|gamma)$", name):
        return name.rsplit("/", 1)[0] + "/gamma", False
    if re.search(r"LayerNorm/(bias|beta)$", name):
        return name.rsplit("/", 1)[0] + "/beta", False
    if name.endswith("/weight"):
        return name[: -len("weight")] + "kernel", True
    return name, False


def _safetensors_state(directory):
    from safetensors.numpy import load

    # Bytes through gfile, so gs:// directories load without a local copy.
    with tf.io.gfile.GFile(os.path.join(directory, "model.safetensors"), "rb") as f:
        raw = load(f.read())
    state = {}
    for key, value in raw.items():
        mapped = _pt_name(key)
        if mapped and value.dtype.kind == "f":
            state[mapped[0]] = value.T if mapped[1] else value
    return state


_TF1_RULES = [
    (r"^bert/encoder/layer_(\d+)/", r"bert/encoder/layer_._\1/"),
    (r"/word_embeddings$", "/word_embeddings/weight"),
    (r"/(position|token_type)_embeddings$", r"/\1_embeddings/embeddings"),
    (r"^cls/predictions/output_bias$", "mlm___cls/predictions/bias"),
    (r"^cls/predictions/", "mlm___cls/predictions/"),
    (r"^cls/seq_relationship/output_weights$", "nsp___cls/seq_relationship/kernel"),
    (r"^cls/seq_relationship/output_bias$", "nsp___cls/seq_relationship/bias"),
    # google-research/bert's run_classifier and run_squad heads.
    (r"^output_weights$", "classifier/kernel"),
    (r"^output_bias$", "classifier/bias"),
    (r"^cls/squad/output_weights$", "qa_outputs/kernel"),
    (r"^cls/squad/output_bias$", "qa_outputs/bias"),
]
# TF1 heads stored as [out, in] (tf.matmul(x, w, transpose_b=True)); every other kernel is [in, out].
_TF1_TRANSPOSED = {"nsp___cls/seq_relationship/kernel", "classifier/kernel", "qa_outputs/kernel"}


def tf1_name(name):
    """google-research/bert variable name -> our (Hugging Face TF) variable name."""
    for pattern, replacement in _TF1_RULES:
        name = re.sub(pattern, replacement, name)
    return name


def _tf1_state(prefix):
    reader = tf.train.load_checkpoint(prefix)
    state = {}
    for name in reader.get_variable_to_shape_map():
        if "adam_" in name or name == "global_step" or "/" not in name and not name.startswith("output_"):
            continue
        target = tf1_name(name)
        value = reader.get_tensor(name)
        state[target] = value.T if target in _TF1_TRANSPOSED else value
    return state


def read_state(source):
    """{our variable name: array} from any source format (kernels in Keras's [in, out] layout)."""
    kind = source_kind(source)
    local = local_source(source)
    try:
        if kind == "hf_tf" or (kind == "hub" and tf.io.gfile.exists(os.path.join(local, "tf_model.h5"))):
            return _hf_h5_state(local)
        if kind in ("safetensors", "hub"):
            return _safetensors_state(local)
        if kind == "keras_hub":
            return keras_hub_format.read_state(local)
        if kind == "tf2":
            return model_garden.read_state(_find_tf_prefix(local))
        return _tf1_state(_find_tf_prefix(local))
    except (OSError, ValueError, tf.errors.OpError) as error:
        raise UserError(f"cannot read --init_checkpoint {source} ({str(error).strip().splitlines()[0][:160]}): "
                        "check that the files are complete") from None


def _is_encoder(name):
    return name.startswith("bert/")


def assign_state(model, state, source, allow_partial_init=False, strict_heads=False):
    """Moves ``state`` into ``model`` by name; returns a report (matched, missing heads, ...).

    Every encoder weight of the model must come from the checkpoint, and every encoder weight of
    the checkpoint must find its place (a pooler the model lacks excepted), unless
    ``allow_partial_init``: anything else would leave random weights behind a successful run.
    Heads (masked-LM, next-sentence, classifier, ...) may be missing: they train from scratch.
    """
    if not model.built:
        model.build_with_dummies()
    variables = {_relative_name(v.name): v for v in model.weights}
    matched, missing, mismatched = [], [], []
    for name, variable in variables.items():
        value = state.get(name)
        if value is None:
            missing.append(name)
        elif tuple(value.shape) != tuple(variable.shape):
            mismatched.append(f"{name} {tuple(value.shape)} vs {tuple(variable.shape)}")
        else:
            matched.append(name)
    unused = sorted(name for name in state if name not in variables)
    encoder = [name for name in variables if _is_encoder(name)]
    encoder_matched = [name for name in matched if _is_encoder(name)]
    encoder_missing = [name for name in missing if _is_encoder(name)]
    encoder_mismatched = [m for m in mismatched if _is_encoder(m)]
    encoder_unused = [name for name in unused if _is_encoder(name) and not name.startswith("bert/pooler/")]
    bad = encoder_missing + encoder_mismatched + encoder_unused
    if not encoder_matched or (bad and not allow_partial_init):
        ours = (encoder_missing + encoder_mismatched)[:3] or ["none"]
        theirs = (encoder_unused or [n for n in unused if not _is_encoder(n)])[:3] or ["none"]
        fix = ("it is not a BERT checkpoint this loader reads (or not BERT at all): convert it to a Hugging Face "
               "directory first" if not encoder_matched else
               "leave --bert_config_file out to use the checkpoint's own config, or pass --allow_partial_init to "
               "train the unmatched weights from scratch")
        raise UserError(f"--init_checkpoint {source} does not fit the model: {len(encoder_matched)} of {len(encoder)} "
                        f"encoder weights matched; model weights without a match: {', '.join(ours)}; checkpoint "
                        f"weights without a place: {', '.join(theirs)}: {fix}")
    head_mismatched = [m for m in mismatched if not _is_encoder(m)]
    if head_mismatched and not allow_partial_init:
        raise UserError(f"--init_checkpoint {source} does not fit the model: {len(head_mismatched)} head weights "
                        f"differ in shape, e.g. {'; '.join(head_mismatched[:3])}: start from the pretrained model, "
                        "or pass --labels in the checkpoint's order")
    heads_missing = [name for name in missing if not _is_encoder(name)]
    if strict_heads and heads_missing:
        raise UserError(f"--init_checkpoint {source} lacks {heads_missing[:3]}")
    for name in matched:
        variables[name].assign(state[name])
    report = {"matched": len(matched), "encoder_weights": len(encoder), "missing_heads": heads_missing,
              "partial": bad + head_mismatched, "unused": unused}
    if report["partial"]:
        logging.warning("--allow_partial_init: %d weights of the model start from scratch, e.g. %s",
                        len(report["partial"]), ", ".join(report["partial"][:3]))
    logging.info("loaded %s: %d of %d weights (%d encoder weights, all matched%s); heads from scratch: %s",
                 source, len(matched), len(variables), len(encoder),
                 "" if not bad else " but for --allow_partial_init's", ", ".join(heads_missing) or "none")
    return report


def load_weights(model, source, strict_heads=False, allow_partial_init=False):
    """Loads ``source`` into ``model`` (built or not); returns the head weights it did not find.

    Refuses, naming what did not match, unless every encoder weight comes from the checkpoint
    (see ``assign_state``).
    """
    return assign_state(model, read_state(source), source, allow_partial_init=allow_partial_init,
                        strict_heads=strict_heads)["missing_heads"]


def save_hf(model, output_dir, vocab_file=None, do_lower_case=True, meta=None):
    """Writes ``model`` in Hugging Face format (config.json, tf_model.h5) plus our metadata, atomically.

    The directory loads with ``model.hf_class.from_pretrained`` and with every bert_tf script.
    """
    hf_model = model.hf_class(model.config)
    hf_model.build_in_name_scope()
    values = {_relative_name(v.name): v for v in model.weights}
    # LoRA models save W + (alpha/r) A B under W's name: plain BERT weights, no LoRA variables.
    values.update({_relative_name(v.name): merged for v, merged in lora.merged_kernels(model)})
    for variable in hf_model.weights:
        name = _relative_name(variable.name)
        if name in values:
            variable.assign(values[name])
    # bert_tf.json goes last: on object stores its presence says the directory is complete.
    with fileio.atomic_path(output_dir, marker=MODEL_META) as temp:
        with fileio.staged_output_dir(temp) as local:
            hf_model.save_pretrained(local)
        if vocab_file:
            tf.io.gfile.copy(vocab_file, os.path.join(temp, "vocab.txt"), overwrite=True)
            fileio.write_json(os.path.join(temp, "tokenizer_config.json"),
                              {"do_lower_case": bool(do_lower_case), "tokenizer_class": "BertTokenizer",
                               "model_max_length": model.config.max_position_embeddings})
        fileio.write_json(os.path.join(temp, MODEL_META), dict(meta or {}, task=model.task))
    return output_dir


def read_model_meta(model_dir):
    path = os.path.join(model_dir, MODEL_META)
    if not tf.io.gfile.exists(path):
        raise UserError(f"{model_dir} is not a bert_tf fine-tuned model (no {MODEL_META}): pass the --output_dir "
                        "of a run_classifier/run_tagger/run_squad run")
    meta = fileio.read_json_object(path, "model metadata", {"task": (str, type(None)), "labels": (list, type(None)),
                                                            "max_seq_length": (int, type(None))},
                                   "restore it from the training run's output_dir/model")
    labels = meta.get("labels")
    if labels is not None and (not all(isinstance(label, str) for label in labels) or len(set(labels)) != len(labels)):
        raise UserError(f"model metadata {path}: 'labels' must list distinct strings, not {labels[:10]}: restore it "
                        "from the training run's output_dir/model")
    return meta


def tokenizer_settings(source):
    """(vocab_file, do_lower_case) a checkpoint carries, each None when it has none.

    ``do_lower_case`` comes from its tokenizer config (tokenizer_config.json, or a keras-hub
    preset's tokenizer.json); without one, tokenization.resolve_lower_case infers it from the vocab.
    """
    if not hub_id(source) and not tf.io.gfile.exists(source) and not _find_tf_prefix(source):
        return None, None
    model_dir = _directory_of(source)
    if keras_hub_format.is_preset(model_dir):
        return keras_hub_format.tokenizer_settings(model_dir)
    vocab = os.path.join(model_dir, "vocab.txt")
    lower = None
    config_path = os.path.join(model_dir, "tokenizer_config.json")
    if tf.io.gfile.exists(config_path):
        lower = fileio.read_json_object(config_path, "tokenizer config", {"do_lower_case": (bool, type(None))},
                                        "fix the file or delete it (casing is then read from the vocab)"
                                        ).get("do_lower_case")
    return (vocab if tf.io.gfile.exists(vocab) else None), lower
