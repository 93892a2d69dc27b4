// Transformer: embeddings, blocks, final norm and head.
#include "layers/transformer.hpp"

#include <stdexcept>
#include <string>

#include "layers/module_list.hpp"
#include "layers/positional_encoding.hpp"

namespace qkv::layers {

namespace {

// The dropout generator's stream, apart from everything else drawn from the seed.
constexpr std::uint64_t kDropoutStream = 0x64726f706f7574;  // "dropout"

}  // namespace

Transformer::Transformer(const TransformerOptions& options, core::Rng& rng)
    : options_(options), dropout_rng_(rng.split(kDropoutStream)) {
  const std::size_t C = options.block.attention.d_model;
  if (options.vocab == 0 || options.max_len == 0 || options.layers == 0) {
    throw std::invalid_argument("Transformer: vocab, max_len and layers must be positive; got " +
                                std::to_string(options.vocab) + ", " +
                                std::to_string(options.max_len) + ", " +
                                std::to_string(options.layers));
  }
  if (!(options.dropout >= 0.0 && options.dropout < 1.0)) {
    throw std::invalid_argument("Transformer: dropout must be in [0, 1), got " +
                                std::to_string(options.dropout));
  }
  options_.block.dropout_rng = &dropout_rng_;
  options_.block.attention.dropout_rng = &dropout_rng_;

  tok_emb_ = register_module("tok_emb", std::make_shared<Embedding>(options.vocab, C, rng));
  if (options.positional == Positional::learned) {
    pos_emb_ = register_module("pos_emb",
                               std::make_shared<LearnedPositionalEmbedding>(options.max_len, C, rng));
  } else {
    pos_emb_ = register_module("pos_emb",
                               std::make_shared<SinusoidalPositionalEncoding>(options.max_len, C));
  }
  auto blocks = register_module("blocks", std::make_shared<ModuleList>());
  for (std::size_t i = 0; i < options.layers; ++i) {
    blocks_.push_back(blocks->append(std::make_shared<TransformerBlock>(options_.block, rng)));
  }
  ln_f_ = register_module("ln_f", std::make_shared<LayerNorm>(C));
  head_ = register_module("head", std::make_shared<Linear>(C, options.vocab, rng));
}

Tensor Transformer::forward(const core::Ids& tokens,
                            const std::vector<std::uint8_t>* key_padding) {
  if (tokens.shape.size() != 2) {
    throw std::invalid_argument("Transformer: expected token ids (B, T), got " +
                                core::shape_str(tokens.shape));
  }
  Tensor h = pos_emb_->forward(tok_emb_->forward(tokens));  // (B, T) -> (B, T, C)
  if (options_.dropout > 0.0) h = core::dropout(h, options_.dropout, is_training(), dropout_rng_);
  for (const auto& block : blocks_) h = block->forward(h, key_padding);
  return head_->forward(ln_f_->forward(h));  // (B, T, C) -> (B, T, V)
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

void Transformer::capture_attention(bool on) {
  for (const auto& block : blocks_) block->attention().capture_attention(on);
}

std::vector<Tensor> Transformer::attention_maps() const {
  std::vector<Tensor> maps;
  for (const auto& block : blocks_) maps.push_back(block->attention().last_attention());
  return maps;
}

}  // namespace qkv::layers
