"""Flag groups shared by the tools/ scripts; names follow google-research/bert where it has one.

Definitions live in functions taking a ``FlagValues`` so modules import without side effects
and tests can build private flag sets. Each ``define_*`` function files the flags it defines under
a help group (data, model, training, distribution, output; see bert_tf/flag_help.py), so ``--help``
lists a script's own flags by group.
"""
from absl import flags

from bert_tf import distribute
from bert_tf.data.text_files import ENCODING_HELP
from bert_tf.flag_help import grouped
# The jobs' define_flags end with check_ranges(fv): defining a script's flags includes their ranges.
from bert_tf.flag_ranges import check_ranges  # noqa: F401
from bert_tf.training import optimization, recipes



@grouped("distribution")
def define_strategy_flags(fv=flags.FLAGS):
    flags.DEFINE_enum("strategy", "auto", list(distribute.STRATEGIES),
                      "Distribution: auto picks a TPU when --tpu is set, then GPUs, then the CPU.", flag_values=fv)
    flags.DEFINE_string("tpu", None, "TPU name, grpc://address, or 'local' on a TPU VM / Colab TPU runtime.",
                        flag_values=fv)
    flags.DEFINE_integer("num_gpus", None, "Use only the first N GPUs (default: all visible).", flag_values=fv)
    flags.DEFINE_enum("mixed_precision", "no", ["no", "fp16", "bf16"],
                      "Mixed precision: fp16 (GPUs, with loss scaling) or bf16 (TPUs, recent GPUs, CPUs with "
                      "AVX512_BF16 or AMX).", flag_values=fv)
    flags.DEFINE_bool("jit_compile", False, "Compile the training step with XLA.", flag_values=fv)
    flags.DEFINE_integer("steps_per_execution", 1, "Training steps run per tf.function call (raise on TPUs).",
                         flag_values=fv)
    # google-research/bert's TPUEstimator flags, with the same meaning (checked in jobs.common.strategy_from).
    flags.DEFINE_alias("iterations_per_loop", "steps_per_execution", flag_values=fv)
    flags.DEFINE_alias("tpu_name", "tpu", flag_values=fv)
    flags.DEFINE_bool("use_tpu", False, "Train on a TPU (google-research/bert's switch; the same as --strategy=tpu, "
                      "with --tpu_name, or the local TPU without it). Stops with an error when no TPU is found.",
                      flag_values=fv)
    flags.DEFINE_string("tpu_zone", None, "GCE zone of a --tpu_name TPU (default: found from the metadata server).",
                        flag_values=fv)
    flags.DEFINE_string("gcp_project", None, "GCP project of a --tpu_name TPU (default: found from the metadata "
                        "server).", flag_values=fv)
    flags.DEFINE_string("master", None, "grpc:// address of the TPU worker, instead of --tpu_name (with --use_tpu).",
                        flag_values=fv)
    flags.DEFINE_integer("num_tpu_cores", None, "With --use_tpu: the TPU cores to train on; must equal the cores of "
                         "the TPU found (google-research/bert's default 8 is not assumed).", flag_values=fv)


@grouped("model")
def define_model_flags(fv=flags.FLAGS):
    flags.DEFINE_string("init_checkpoint", None,
                        "Starting weights: a Hugging Face/bert_tf model directory, a directory with "
                        "model.safetensors, a keras-hub BERT preset, a google-research/bert TF1 or TF Model Garden "
                        "TF2 checkpoint, or hub:<id> (the only form that downloads).", flag_values=fv)
    flags.DEFINE_bool("allow_partial_init", False,
                      "Start the encoder weights --init_checkpoint lacks (or has in another shape) from scratch "
                      "instead of stopping. Off: every encoder weight must come from the checkpoint.", flag_values=fv)
    flags.DEFINE_string("bert_config_file", None,
                        "Model config: a preset name (tiny, mini, small, medium, base, large) or a JSON file. "
                        "Defaults to the config stored with --init_checkpoint.", flag_values=fv)
    flags.DEFINE_string("vocab_file", None,
                        "WordPiece vocab.txt. Defaults to the one stored with --init_checkpoint.", flag_values=fv)
    flags.DEFINE_bool("do_lower_case", None,
                      "Lower-case input text. Defaults to --init_checkpoint's tokenizer config, else to what the "
                      "vocab shows (capitalised word pieces: cased); a value contradicting either is refused.",
                      flag_values=fv)
    flags.DEFINE_integer("max_seq_length", 128, "Maximum total input length in WordPiece tokens.", flag_values=fv)


@grouped("training")
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
    flags.DEFINE_float("adam_epsilon", 1e-6, "Epsilon of AdamW/LAMB's update m / (sqrt(v) + epsilon) "
                       "(google-research/bert's 1e-6; Keras' Adam 1e-7). Weights whose gradients are about "
                       "this small train more slowly the larger it is.", flag_values=fv)
    flags.DEFINE_float("clip_norm", 1.0, "Clip the global gradient norm to this before each update "
                       "(google-research/bert's 1.0); 0 turns clipping off.", flag_values=fv)
    define_schedule_flags(fv)
    flags.DEFINE_integer("save_checkpoints_steps", 1000, "Save a checkpoint every N steps.", flag_values=fv)
    flags.DEFINE_integer("log_steps", 50, "Log metrics every N steps (TensorBoard and train_metrics.jsonl).",
                         flag_values=fv)
    flags.DEFINE_enum("nan_policy", "stop", ["stop", "skip_batch"],
                      "On a NaN/Inf loss: stop with the step number, or skip that batch's update.", flag_values=fv)
    flags.DEFINE_bool("overwrite_output_dir", False,
                      "Run even if another process holds --output_dir's lock.", flag_values=fv)
    flags.DEFINE_integer("seed", 42, "Random seed for initialisation and data order.", flag_values=fv)
    flags.DEFINE_bool("skip_corrupt_records", False,
                      "Train past corrupt TFRecord files (each is read up to its first bad record; what is "
                      "skipped is reported and counted) instead of stopping with the file and record index.",
                      flag_values=fv)


@grouped("training")
def define_schedule_flags(fv=flags.FLAGS):
    """The learning-rate schedule after warmup; unset knobs take the defaults in training/optimization.py."""
    flags.DEFINE_enum("lr_schedule", None, list(optimization.SCHEDULES),
                      "Learning rate after the linear warmup (default: linear; the fine-tuning scripts take --recipe's). linear and polynomial decay to "
                      "--lr_end at the last step, polynomial as (1 - progress)**--lr_power; cosine follows half a "
                      "cosine wave down to --lr_end; cosine_with_restarts runs --num_cycles such waves, each "
                      "restarting at --learning_rate; constant stays at --learning_rate.", flag_values=fv)
    flags.DEFINE_float("lr_end", None, "Learning rate at the last step of linear, polynomial and cosine schedules "
                       "(default: 0).", flag_values=fv)
    flags.DEFINE_float("lr_power", None, "Exponent of --lr_schedule=polynomial (default: 1, a straight line).",
                       flag_values=fv)
    flags.DEFINE_integer("num_cycles", None, "Cosine waves of --lr_schedule=cosine_with_restarts (default: 1).",
                         flag_values=fv)


def define_peft_flags(fv=flags.FLAGS):
    """Parameter-efficient fine-tuning (applied by jobs.common.load_init; see bert_tf/modeling/lora.py)."""
    flags.DEFINE_integer("lora_rank", 0, "LoRA rank on the attention query/value projections (0: off). The "
                         "encoder is frozen; only the LoRA matrices and the task head train. Saved models and "
                         "exports hold the merged weights.", flag_values=fv)
    flags.DEFINE_float("lora_alpha", 16.0, "LoRA scaling numerator: the update is (lora_alpha / lora_rank) * A B.",
                       flag_values=fv)
    flags.DEFINE_bool("freeze_encoder", False, "Train the task head only (the whole encoder frozen).",
                      flag_values=fv)
    flags.DEFINE_bool("freeze_embeddings", False,
                      "Keep the embedding tables fixed. AdamW otherwise updates the whole word-embedding matrix "
                      "(about half of a small BERT's weights) every step, which dominates step time on CPUs.",
                      flag_values=fv)
    flags.DEFINE_integer("freeze_layers", 0,
                         "Keep the embeddings and the lowest N encoder layers fixed. Backpropagation then stops "
                         "above them, so a step costs less (with half the layers frozen, about a third less).",
                         flag_values=fv)


@grouped("training")
def define_finetune_flags(fv=flags.FLAGS, data_format="the task's format", predictions_file="predictions",
                          length_buckets=None):
    """Data files, do_* switches, epochs/steps, evaluation schedule and parameter-efficient training shared
    by the fine-tuning scripts.

    ``length_buckets`` (a default like "32,64,128") also defines --length_buckets.
    """
    flags.DEFINE_string("train_file", None, f"Training data: {data_format}.", flag_values=fv)
    flags.DEFINE_string("dev_file", None, "Evaluation data for --do_eval, same format.", flag_values=fv)
    flags.DEFINE_string("test_file", None, "Prediction data for --do_predict, same format (gold optional).",
                        flag_values=fv)
    flags.DEFINE_bool("do_train", False, "Fine-tune on --train_file.", flag_values=fv)
    flags.DEFINE_bool("do_eval", False, "Evaluate on --dev_file; writes eval_results.json.", flag_values=fv)
    flags.DEFINE_bool("do_predict", False, f"Predict --test_file; writes {predictions_file} (+ test_results.json "
                      "when it has gold answers).", flag_values=fv)
    flags.DEFINE_float("num_train_epochs", 3.0, "Training epochs (ignored when --num_train_steps is set).",
                       flag_values=fv)
    flags.DEFINE_integer("num_train_steps", None, "Training steps (default: from --num_train_epochs).",
                         flag_values=fv)
    flags.DEFINE_integer("max_train_examples", None, "Use only the first N training examples.", flag_values=fv)
    flags.DEFINE_float("warmup_proportion", 0.1, "Fraction of steps with linear learning-rate warmup.",
                       flag_values=fv)
    flags.DEFINE_enum("recipe", recipes.DEFAULT_RECIPE, list(recipes.RECIPES),
                      "Defaults of --warmup_proportion, --lr_schedule, --weight_decay, --clip_norm, --adam_epsilon and "
                      "--head_lr_multiplier (each "
                      "flag given explicitly wins): " + "; ".join(f"{name}: {text}" for name, text in
                                                                  recipes.RECIPE_HELP.items()) + ".",
                      flag_values=fv)
    flags.DEFINE_float("layerwise_lr_decay", 1.0,
                       "Layer-wise learning-rate decay: encoder layer i of L trains at learning_rate * "
                       "decay**(L - i), the embeddings at decay**(L + 1), the task head at the full rate (times "
                       "--head_lr_multiplier). "
                       "1 turns it off; 0.8-0.95 are usual.", flag_values=fv)
    flags.DEFINE_float("head_lr_multiplier", 1.0,
                       "The task head (the layers on top of the pretrained encoder, which start random) trains at "
                       "learning_rate times this; the encoder keeps learning_rate.", flag_values=fv)
    flags.DEFINE_integer("eval_every_steps", None, "Evaluate on --dev_file every N steps (default: at the end).",
                         flag_values=fv)
    flags.DEFINE_string("metric_for_best_model", None,
                        "Keep the checkpoint best on this eval metric and use it for eval/predict/save.",
                        flag_values=fv)
    flags.DEFINE_integer("early_stopping_patience", None, "Stop after N evaluations without improvement.",
                         flag_values=fv)
    flags.DEFINE_string("cache_dir", None, "Where converted TFRecords are cached (default: output_dir/cache).",
                        flag_values=fv)
    flags.DEFINE_string("encoding", None, ENCODING_HELP, flag_values=fv)
    if length_buckets is not None:
        flags.DEFINE_list("length_buckets", length_buckets,
                          "Pad each training batch only to the smallest of these bounds that holds its longest "
                          "example (bounds above --max_seq_length are dropped). Empty: pad to --max_seq_length.",
                          flag_values=fv)
        flags.DEFINE_bool("group_by_length", False,
                          "Fill each training batch with examples of one --length_buckets bucket: less padding, "
                          "so faster steps, but every batch holds one length class (in the quality benchmark's "
                          "63-step runs it scored within 0.005 of random batches). Off: batches are random "
                          "samples, each padded to the bound its longest example needs.",
                          flag_values=fv)
    define_peft_flags(fv)
    # --help shows the default recipe's values; a job applies --recipe's before it reads them.
    recipes.set_defaults(fv, recipes.DEFAULT_RECIPE)
