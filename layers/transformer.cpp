// Transformer: embeddings, the slots built through the registry, final norm and head.
#include "layers/transformer.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "layers/module_list.hpp"
#include "strict_yaml/closest_match.hpp"

namespace qkv::layers {

namespace {

// The dropout generator's stream, apart from everything else drawn from the seed.
constexpr std::uint64_t kDropoutStream = 0x64726f706f7574;  // "dropout"

void check_sizes(const TransformerOptions& o, std::size_t vocab, std::size_t max_len) {
  if (vocab == 0 || max_len == 0 || o.layers == 0) {
    throw std::invalid_argument("Transformer: vocab, max_len and layers must be positive; got " +
                                std::to_string(vocab) + ", " + std::to_string(max_len) + ", " +
                                std::to_string(o.layers));
  }
  if (o.d_model == 0 || o.heads == 0 || o.d_ff == 0) {
    throw std::invalid_argument("Transformer: d_model, heads and d_ff must be positive; got " +
                                std::to_string(o.d_model) + ", " + std::to_string(o.heads) +
                                ", " + std::to_string(o.d_ff));
  }
  if (!(o.dropout >= 0.0 && o.dropout < 1.0)) {
    throw std::invalid_argument("Transformer: dropout must be in [0, 1), got " +
                                std::to_string(o.dropout));
  }
}

std::shared_ptr<AttentionLayer> create_attention(const LayerRegistry& registry,
                                                 const TypedSection& section,
                                                 const LayerContext& context, core::Rng& rng) {
  auto attention = std::dynamic_pointer_cast<AttentionLayer>(registry.create(section, context, rng));
  if (!attention) {
    section.options.fail("type", "layer type '" + section.type +
                                     "' is not an attention layer (the attention slot needs a "
                                     "layer derived from AttentionLayer, which takes the key "
                                     "padding and can hand back its maps)");
  }
  return attention;
}

}  // namespace

Transformer::Transformer(const TransformerOptions& options, std::size_t vocab, std::size_t max_len,
                         core::Rng& rng, const LayerRegistry& registry)
    : options_(options), vocab_(vocab), max_len_(max_len), dropout_rng_(rng.split(kDropoutStream)) {
  check_sizes(options, vocab, max_len);
  const LayerContext context = layer_context();
  const std::size_t C = options.d_model;
  tok_emb_ = register_module("tok_emb", std::make_shared<Embedding>(vocab, C, rng));
  pos_emb_ = register_module("pos_emb", registry.create(options.positional, context, rng));
  auto blocks = register_module("blocks", std::make_shared<ModuleList>());
  for (std::size_t i = 0; i < options.layers; ++i) {
    blocks_.push_back(blocks->append(make_block(registry, context, rng)));
  }
  ln_f_ = register_module("ln_f", registry.create(options.norm, context, rng));
  head_ = register_module("head", std::make_shared<Linear>(C, vocab, rng));
  name_hook_points();
}

void Transformer::name_hook_points() {
  HookPoints points{{"hook_embed", &hook_embed_}, {"hook_pos_embed", &hook_pos_embed_}};
  for (std::size_t i = 0; i < blocks_.size(); ++i) {
    const std::string prefix = "blocks." + std::to_string(i) + ".";
    for (const auto& [name, point] : blocks_[i]->hook_points()) points.emplace_back(prefix + name, point);
  }
  points.emplace_back("ln_final.hook_normalized", &hook_ln_final_);
  points.emplace_back("logits", &hook_logits_);
  for (const auto& [name, point] : points) {
    point->set_name(name);
    hook_names_.push_back(name);
    hook_points_[name] = point;
  }
}

LayerContext Transformer::layer_context() {
  LayerContext context;
  context.d_model = options_.d_model;
  context.heads = options_.heads;
  context.d_ff = options_.d_ff;
  context.activation = options_.activation;
  context.dropout = options_.dropout;
  context.max_len = max_len_;
  context.dropout_rng = &dropout_rng_;
  return context;
}

std::shared_ptr<TransformerBlock> Transformer::make_block(const LayerRegistry& registry,
                                                          const LayerContext& context,
                                                          core::Rng& rng) {
  // Built in parameter order, which is also the order of their random draws.
  BlockLayers layers;
  layers.ln1 = registry.create(options_.norm, context, rng);
  layers.attn = create_attention(registry, options_.attention, context, rng);
  if (options_.ffn.type != "none") {
    layers.ln2 = registry.create(options_.norm, context, rng);
    layers.ffn = registry.create(options_.ffn, context, rng);
  }
  TransformerBlockOptions block;
  block.norm_placement = options_.norm_placement;
  block.dropout = options_.dropout;
  return std::make_shared<TransformerBlock>(layers, block, &dropout_rng_);
}

Tensor Transformer::forward(const core::Ids& tokens, const KeyPadding* key_padding) {
  if (tokens.shape.size() != 2) {
    throw std::invalid_argument("Transformer: expected token ids (B, T), got " +
                                core::shape_str(tokens.shape));
  }
  Tensor embedded = tok_emb_->forward(tokens);  // (B, T) -> (B, T, C)
  hook_embed_.apply(embedded);
  Tensor h = pos_emb_->forward(embedded);
  if (hook_pos_embed_.active()) {
    core::NoGrad no_grad;
    Tensor added = core::sub(h, embedded);
    hook_pos_embed_.apply(added);  // read-only: its readers only
  }
  if (options_.dropout > 0.0) h = core::dropout(h, options_.dropout, is_training(), dropout_rng_);
  for (const auto& block : blocks_) h = block->forward(h, key_padding);
  Tensor normalized = ln_f_->forward(h);
  hook_ln_final_.apply(normalized);
  Tensor logits = head_->forward(normalized);  // (B, T, C) -> (B, T, V)
  hook_logits_.apply(logits);
  return logits;
}

TransformerBlock& Transformer::block(std::size_t i) {
  if (i >= blocks_.size()) {
    throw std::out_of_range("Transformer::block: " + std::to_string(i) + " out of range (layers " +
                            std::to_string(blocks_.size()) + ")");
  }
  return *blocks_[i];
}

const TransformerBlock& Transformer::block(std::size_t i) const {
  return const_cast<Transformer*>(this)->block(i);
}

std::size_t Transformer::attention_parameter_count() const {
  std::size_t count = 0;
  for (const auto& block : blocks_) count += block->attention().parameter_count();
  return count;
}

void Transformer::capture_attention(bool on) {
  for (const auto& block : blocks_) block->attention().capture_attention(on);
}

std::vector<Tensor> Transformer::attention_maps() const {
  std::vector<Tensor> maps;
  for (const auto& block : blocks_) maps.push_back(block->attention().attention_map());
  return maps;
}

HookPoint& Transformer::hook_point(const std::string& name) {
  const auto found = hook_points_.find(name);
  if (found != hook_points_.end()) return *found->second;
  const std::string suggestion = closest_match(name, hook_names_);
  throw std::invalid_argument("Transformer: no hook point '" + name + "' in this model" +
                              (suggestion.empty() ? std::string()
                                                  : " (did you mean '" + suggestion + "'?)") +
                              "; its points are " + hook_names_.front() + ", ..., " +
                              hook_names_.back() + " (hook_names() lists them)");
}

HookHandle Transformer::add_hook(const Hook& hook) { return hook_point(hook.name).add(hook); }

void Transformer::remove_hook(const HookHandle& handle) {
  const bool ours = std::any_of(hook_points_.begin(), hook_points_.end(),
                                [&](const auto& entry) { return entry.second == handle.point; });
  if (!ours) {
    throw std::invalid_argument("Transformer::remove_hook: the handle is not of a hook point of "
                                "this model");
  }
  handle.point->remove(handle);
}

void Transformer::clear_hooks() {
  for (const auto& entry : hook_points_) entry.second->clear();
}

}  // namespace qkv::layers
