// One rank's shard of a batch and the sum of the ranks' gradients (see data_parallel.hpp).
#include "train/data_parallel.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace qkv::train {

namespace {

std::size_t masked_positions(const std::vector<std::uint8_t>& mask, std::size_t begin,
                             std::size_t end) {
  return static_cast<std::size_t>(
      std::count_if(mask.begin() + static_cast<std::ptrdiff_t>(begin),
                    mask.begin() + static_cast<std::ptrdiff_t>(end),
                    [](std::uint8_t m) { return m != 0; }));
}

template <class T> std::vector<T> rows_of(const std::vector<T>& values, std::size_t width,
                                          RowRange rows) {
  if (values.empty()) return {};
  return std::vector<T>(values.begin() + static_cast<std::ptrdiff_t>(rows.begin * width),
                        values.begin() + static_cast<std::ptrdiff_t>(rows.end * width));
}

}  // namespace

RowRange rank_rows(std::size_t rows, std::size_t rank, std::size_t ranks) {
  if (ranks == 0 || rank >= ranks)
    throw std::invalid_argument("rank_rows: rank " + std::to_string(rank) + " of " +
                                std::to_string(ranks) + " ranks does not exist");
  if (rows % ranks != 0)
    throw std::invalid_argument(
        "train.batch_size " + std::to_string(rows) + " does not split over " +
        std::to_string(ranks) + " ranks: it is the global batch, of which every rank trains "
        "an equal share, so it must be a multiple of the number of ranks");
  const std::size_t share = rows / ranks;
  return {rank * share, (rank + 1) * share};
}

tasks::Batch take_rows(const tasks::Batch& batch, RowRange rows) {
  const std::size_t T = batch.seq_len();
  tasks::Batch part;
  part.inputs = {{rows.end - rows.begin, T}, rows_of(batch.inputs.values, T, rows)};
  part.targets = {{rows.end - rows.begin, T}, rows_of(batch.targets.values, T, rows)};
  part.mask = rows_of(batch.mask, T, rows);
  part.answer_mask = rows_of(batch.answer_mask, T, rows);
  part.groups = rows_of(batch.groups, 1, rows);
  part.distances = rows_of(batch.distances, 1, rows);
  return part;
}

DataParallel::DataParallel(Communicator& communicator, std::vector<core::NamedParameter> params,
                           core::Tensor flat_gradients)
    : communicator_(communicator), params_(std::move(params)),
      flat_gradients_(std::move(flat_gradients)) {
  std::size_t total = 0;
  for (const core::NamedParameter& param : params_) {
    if (param.tensor.dtype() != params_.front().tensor.dtype())
      throw std::invalid_argument("data-parallel training needs parameters of one dtype; '" +
                                  param.name + "' differs from '" + params_.front().name + "'");
    total += param.tensor.numel();
  }
  if (!flat_gradients_.defined() || flat_gradients_.numel() != total)
    throw std::invalid_argument(
        "data-parallel training sums the optimizer's flat gradient buffer, which must hold the " +
        std::to_string(total) + " gradient values of the parameters; it holds " +
        std::to_string(flat_gradients_.defined() ? flat_gradients_.numel() : 0));
}

tasks::Batch DataParallel::shard(const tasks::Batch& batch) {
  const RowRange rows =
      rank_rows(batch.batch_size(), communicator_.rank(), communicator_.size());
  const std::size_t T = batch.seq_len();
  batch_tokens_ = masked_positions(batch.mask, 0, batch.mask.size());
  shard_tokens_ = masked_positions(batch.mask, rows.begin * T, rows.end * T);
  return take_rows(batch, rows);
}

// Scales this rank's gradients by its share and sums them over all ranks, in place. Every
// parameter's gradient, reached by this step's backward, must be its part of the flat
// buffer: then the buffer covers each of them exactly once.
template <class T> void DataParallel::sum_gradients(double share) {
  T* flat = flat_gradients_.data<T>();
  const std::size_t n = flat_gradients_.numel();
  for (const core::NamedParameter& param : params_) {
    const core::Tensor grad = param.tensor.grad();
    if (!grad.defined())
      throw std::runtime_error(
          "data-parallel training needs a gradient for every parameter at every step, and "
          "backward did not reach '" + param.name + "' (a layer that does not use it)");
    const T* g = grad.data<T>();
    if (g < flat || g >= flat + n)
      throw std::logic_error("data-parallel training: the gradient of '" + param.name +
                             "' is not in the optimizer's flat gradient buffer");
  }
  const T scale = static_cast<T>(share);
  for (std::size_t i = 0; i < n; ++i) flat[i] *= scale;
  communicator_.allreduce_sum(flat, n);
}

double DataParallel::reduce(double loss) {
  const double share =
      static_cast<double>(shard_tokens_) / static_cast<double>(std::max<std::size_t>(1, batch_tokens_));
  if (flat_gradients_.dtype() == core::DType::f64)
    sum_gradients<double>(share);
  else
    sum_gradients<float>(share);
  double loss_sum = loss * static_cast<double>(shard_tokens_);
  communicator_.allreduce_sum(&loss_sum, 1);
  return loss_sum / static_cast<double>(std::max<std::size_t>(1, batch_tokens_));
}

}  // namespace qkv::train
