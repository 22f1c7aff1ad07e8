// GalaxyConfig: every key of a Galaxy (and Galaxy-LM prototype) JSON config,
// typed, with its default. Field names are the JSON keys unchanged so that a
// reader can grep one name from config file to compiler.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace galaxy::config {

enum class ParallelMode { kSerial, kDP, kTP, kSP, kPP, kGalaxy };
// How one region (ATT, CON, MLP) is split: None = replicated on every rank.
enum class BlockMethod { kNone, kTP, kSP };
enum class PeftMethod { kFull, kLora, kAdapter, kSide, kSideOnly };
enum class Optimizer { kSgd, kAdamW };
// gelu = exact erf GELU; gelu_new = tanh approximation; swish = x*sigmoid(x).
enum class Activation { kGelu, kGeluNew, kRelu, kSwish };
enum class PipelineSchedule { kGPipe, k1F1B };
// Operand precision of the matmul-class kernels (docs/kernels.md "Matmul
// precision"); everything else, parameters included, stays fp32.
enum class DType { kF32, kBF16 };

struct GalaxyConfig {
  // --- Model ---
  int64_t vocab_size = 21128;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  double layer_norm_eps = 1e-12;
  double initializer_range = 0.02;
  Activation hidden_act = Activation::kGelu; // gelu or gelu_new only
  int64_t num_classes = 10;
  int64_t pad_token_id = 0;
  std::string model_type = "bert";
  // What the model is trained for: "classification" or "causal_lm"; empty =
  // the model's default (models/NAME/spec.cc).
  std::string task;
  // Decoder-only (LLaMA) keys, Hugging Face's names and defaults.
  int64_t num_key_value_heads = 0; // 0: num_attention_heads (no GQA)
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  double attention_dropout = 0.0;
  // Encoder-decoder (BART) keys, Hugging Face's names. The encoder's sizes
  // are the shared fields (d_model -> hidden_size, encoder_layers ->
  // num_hidden_layers, encoder_attention_heads -> num_attention_heads,
  // encoder_ffn_dim -> intermediate_size, dropout -> hidden_dropout_prob);
  // the decoder's are these.
  int64_t decoder_layers = 0;
  int64_t decoder_attention_heads = 0;
  int64_t decoder_ffn_dim = 0;
  double activation_dropout = 0.0;
  double classifier_dropout = 0.0;
  bool scale_embedding = false;
  int64_t bos_token_id = 0;
  int64_t eos_token_id = 2;
  int64_t decoder_start_token_id = 2;
  int64_t target_pad_size = 0; // labels' length; 0: pad_size
  // Inference (docs/inference.md). max_seq: the KV cache's positions (prompt
  // plus new tokens) of a causal LM's @prefill / @decode; 0: pad_size.
  // inference: forward-only plans (eval_step, prefill, decode; no train_step,
  // no optimizer state). Not prototype keys; galaxyc --max-seq / --inference.
  int64_t max_seq = 0;
  bool inference = false;

  // --- Training ---
  int64_t batch_size = 4;
  int64_t pad_size = 32; // the sequence length
  double learning_rate = 5e-5;
  Optimizer optimizer = Optimizer::kSgd;
  double weight_decay = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_epsilon = 1e-8;
  int64_t num_epochs = 3;
  int64_t seed = 42;
  DType dtype = DType::kF32; // "fp32" | "bf16" (not a prototype key)

  // --- PEFT: at most one method flag true; none true means full. The parser
  // clears full_model when the file turns another method on without naming
  // full_model; code that sets a flag by hand must clear full_model itself.
  bool full_model = true;
  bool use_lora = false;
  int64_t lora_dim = 8; // also read as lora_att_dim or lora_r
  double lora_alpha = 32;
  double lora_dropout = 0.1;
  std::vector<std::string> lora_target_modules = {"query", "value"};
  bool fan_in_fan_out = false;
  bool merge_weights = false;
  bool use_adapter = false;
  int64_t adapter_reduction_dim = 16;
  Activation non_linearity = Activation::kGeluNew;
  bool use_side = false;
  bool use_side_only = false; // a refinement of side: may be set with use_side
  int64_t side_reduction_factor = 8;

  // --- Parallel ---
  ParallelMode parallel_mode = ParallelMode::kSerial;
  int world_size = 0; // 0 = not given: from the command line or the lists
  std::vector<int64_t> tp_num_attention_heads_list;
  std::vector<int64_t> tp_intermediate_size_list;
  std::vector<int64_t> seq_scatter_list;
  std::vector<int64_t> stage_num_hidden_layers_list;
  std::vector<int64_t> dp_batch_list;
  // Region methods; only galaxy mode reads them (see regionMethods()).
  BlockMethod att_parallel_method = BlockMethod::kTP;
  BlockMethod con_parallel_method = BlockMethod::kSP;
  BlockMethod mlp_parallel_method = BlockMethod::kTP;
  int64_t num_microbatches = 1;
  std::vector<int64_t> pp_microbatch_list;
  PipelineSchedule pp_schedule = PipelineSchedule::kGPipe;
  // Hybrid pipelines ("pp+tp", "pp+galaxy", "pp+dp", "pp+sp" as
  // parallel_mode): each stage is a group of pp_group_size ranks running this
  // SPMD mode; world = stages x pp_group_size. Serial: one rank per stage.
  ParallelMode pp_group_mode = ParallelMode::kSerial;
  int pp_group_size = 1; // derived by resolveConfig
  // Tile-level communication overlap (not a prototype key; compiler/
  // CommTiling.h): a linear feeding a reduce-scatter / all-reduce, and the
  // linears fed by an all-gather, run in this many batch tiles, each tile's
  // collective behind the next tile's GEMM. 1 = off. Fewer-row GEMMs may
  // round differently from the whole one, so it is opt-in.
  int64_t comm_overlap_tiles = 1;

  // --- Not keys ---
  std::string source; // file (or name) the config came from; prefixes errors
  // Whether the partition stage fuses op pairs (galaxy-fuse); galaxyc
  // --no-fuse clears it, for A/B benchmarks of the fusions.
  bool fuse = true;
  std::vector<std::string> warnings;
};

} // namespace galaxy::config
