"""Flag groups shared by the tools/ scripts; names follow google-research/bert where it has one.

Definitions live in functions taking a ``FlagValues`` so modules import without side effects
and tests can build private flag sets.
"""
from absl import flags

from bert_tf import distribute


def define_strategy_flags(fv=flags.FLAGS):
    flags.DEFINE_enum("strategy", "auto", list(distribute.STRATEGIES),
                      "Distribution: auto picks a TPU when --tpu is set, then GPUs, then the CPU.", flag_values=fv)
    flags.DEFINE_string("tpu", None, "TPU name, grpc://address, or 'local' on a TPU VM / Colab TPU runtime.",
                        flag_values=fv)
    flags.DEFINE_integer("num_gpus", None, "Use only the first N GPUs (default: all visible).", flag_values=fv)
    flags.DEFINE_enum("mixed_precision", "no", ["no", "fp16", "bf16"],
                      "Mixed precision: fp16 (GPUs, with loss scaling) or bf16 (TPUs, recent GPUs).", flag_values=fv)
    flags.DEFINE_bool("jit_compile", False, "Compile the training step with XLA.", flag_values=fv)
    flags.DEFINE_integer("steps_per_execution", 1, "Training steps run per tf.function call (raise on TPUs).",
                         flag_values=fv)


def define_model_flags(fv=flags.FLAGS):
    flags.DEFINE_string("init_checkpoint", None,
                        "Starting weights: a Hugging Face/bert_tf model directory, a directory with "
                        "model.safetensors, a google-research/bert TF1 checkpoint, or a hub id.", flag_values=fv)
    flags.DEFINE_string("bert_config_file", None,
                        "Model config: a preset name (tiny, mini, small, medium, base, large) or a JSON file. "
                        "Defaults to the config stored with --init_checkpoint.", flag_values=fv)
    flags.DEFINE_string("vocab_file", None,
                        "WordPiece vocab.txt. Defaults to the one stored with --init_checkpoint.", flag_values=fv)
    flags.DEFINE_bool("do_lower_case", None,
                      "Lower-case input text. Defaults to --init_checkpoint's tokenizer_config.json, else True.",
                      flag_values=fv)
    flags.DEFINE_integer("max_seq_length", 128, "Maximum total input length in WordPiece tokens.", flag_values=fv)


def define_training_flags(fv=flags.FLAGS, learning_rate=5e-5, batch_size=32):
    flags.DEFINE_string("output_dir", None, "Where checkpoints, logs, results and the final model go.",
                        flag_values=fv)
    flags.DEFINE_integer("train_batch_size", batch_size, "Global training batch size (all replicas).",
                         flag_values=fv)
    flags.DEFINE_integer("eval_batch_size", 64, "Global evaluation/prediction batch size.", flag_values=fv)
    flags.DEFINE_float("learning_rate", learning_rate, "Peak learning rate of AdamW.", flag_values=fv)
    flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "Optimizer (LAMB for very large batches).",
                      flag_values=fv)
    flags.DEFINE_float("weight_decay", 0.01, "Decoupled weight decay (not on LayerNorm and biases).",
                       flag_values=fv)
    flags.DEFINE_integer("save_checkpoints_steps", 1000, "Save a checkpoint every N steps.", flag_values=fv)
    flags.DEFINE_integer("log_steps", 50, "Log metrics every N steps (TensorBoard and train_metrics.jsonl).",
                         flag_values=fv)
    flags.DEFINE_enum("nan_policy", "stop", ["stop", "skip_batch"],
                      "On a NaN/Inf loss: stop with the step number, or skip that batch's update.", flag_values=fv)
    flags.DEFINE_bool("overwrite_output_dir", False,
                      "Run even if another process holds --output_dir's lock.", flag_values=fv)
    flags.DEFINE_integer("seed", 42, "Random seed for initialisation and data order.", flag_values=fv)
