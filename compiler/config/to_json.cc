#include "compiler/config/to_json.h"

#include <algorithm>

#include "compiler/config/enum_names.h"
#include "models/registry.h"
#include "nlohmann/json.hpp"

namespace galaxy::config {

std::string toJson(const GalaxyConfig &c) {
  // ordered_json keeps the grouping a reader expects instead of sorting keys.
  nlohmann::ordered_json j;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["intermediate_size"] = c.intermediate_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["type_vocab_size"] = c.type_vocab_size;
  j["hidden_dropout_prob"] = c.hidden_dropout_prob;
  j["attention_probs_dropout_prob"] = c.attention_probs_dropout_prob;
  j["layer_norm_eps"] = c.layer_norm_eps;
  j["initializer_range"] = c.initializer_range;
  j["hidden_act"] = toString(c.hidden_act);
  j["num_classes"] = c.num_classes;
  j["pad_token_id"] = c.pad_token_id;
  j["model_type"] = c.model_type;
  // An empty task is the family's default: written out, so the file says
  // what the compiler builds.
  const models::ModelSpec *own = models::findModel(c.model_type);
  j["task"] = c.task.empty() && own && !own->tasks.empty() ? own->tasks.front()
                                                           : c.task;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["attention_bias"] = c.attention_bias;
  j["mlp_bias"] = c.mlp_bias;
  j["attention_dropout"] = c.attention_dropout;
  j["decoder_layers"] = c.decoder_layers;
  j["decoder_attention_heads"] = c.decoder_attention_heads;
  j["decoder_ffn_dim"] = c.decoder_ffn_dim;
  j["activation_dropout"] = c.activation_dropout;
  j["classifier_dropout"] = c.classifier_dropout;
  j["scale_embedding"] = c.scale_embedding;
  j["bos_token_id"] = c.bos_token_id;
  j["eos_token_id"] = c.eos_token_id;
  j["decoder_start_token_id"] = c.decoder_start_token_id;
  j["target_pad_size"] = c.target_pad_size;
  j["max_seq"] = c.max_seq;
  j["inference"] = c.inference;

  j["batch_size"] = c.batch_size;
  j["pad_size"] = c.pad_size;
  j["learning_rate"] = c.learning_rate;
  j["optimizer"] = toString(c.optimizer);
  j["weight_decay"] = c.weight_decay;
  j["adam_beta1"] = c.adam_beta1;
  j["adam_beta2"] = c.adam_beta2;
  j["adam_epsilon"] = c.adam_epsilon;
  j["num_epochs"] = c.num_epochs;
  j["seed"] = c.seed;
  j["dtype"] = toString(c.dtype);

  j["full_model"] = c.full_model;
  j["use_lora"] = c.use_lora;
  j["lora_dim"] = c.lora_dim;
  j["lora_alpha"] = c.lora_alpha;
  j["lora_dropout"] = c.lora_dropout;
  j["lora_target_modules"] = c.lora_target_modules;
  j["fan_in_fan_out"] = c.fan_in_fan_out;
  j["merge_weights"] = c.merge_weights;
  j["use_adapter"] = c.use_adapter;
  j["adapter_reduction_dim"] = c.adapter_reduction_dim;
  j["non_linearity"] = toString(c.non_linearity);
  j["use_side"] = c.use_side;
  j["use_side_only"] = c.use_side_only;
  j["side_reduction_factor"] = c.side_reduction_factor;

  j["parallel_mode"] = modeString(c.parallel_mode, c.pp_group_mode);
  if (c.world_size > 0)
    j["world_size"] = c.world_size;
  else
    j["world_size"] = nullptr;
  j["tp_num_attention_heads_list"] = c.tp_num_attention_heads_list;
  j["tp_intermediate_size_list"] = c.tp_intermediate_size_list;
  j["seq_scatter_list"] = c.seq_scatter_list;
  j["stage_num_hidden_layers_list"] = c.stage_num_hidden_layers_list;
  j["dp_batch_list"] = c.dp_batch_list;
  j["att_parallel_method"] = toString(c.att_parallel_method);
  j["con_parallel_method"] = toString(c.con_parallel_method);
  j["mlp_parallel_method"] = toString(c.mlp_parallel_method);
  j["num_microbatches"] = c.num_microbatches;
  j["pp_microbatch_list"] = c.pp_microbatch_list;
  j["pp_schedule"] = toString(c.pp_schedule);
  j["comm_overlap_tiles"] = c.comm_overlap_tiles;
  // Another family's own keys would make the file read as that family's.
  for (const models::ModelSpec *m : models::registeredModels())
    if (m != own)
      for (const std::string &key : m->recognisingKeys)
        if (!own ||
            std::find(own->recognisingKeys.begin(), own->recognisingKeys.end(),
                      key) == own->recognisingKeys.end())
          j.erase(key);
  return j.dump(2) + "\n";
}

} // namespace galaxy::config
