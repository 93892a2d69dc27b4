// DataParallel: one rank's part in a training on several processes (issue #13), what the
// Trainer does differently when its communicator has more than one rank.
//
// train.batch_size is the global batch. Every rank draws the whole batch from the same
// data generator (so the stream of examples is the single process's), trains its own
// contiguous rows of it (rank_rows: batch_size / N each, in rank order), and after
// backward the gradients of all ranks are summed in one allreduce, in place, over the
// optimizer's flat gradient buffer (optim::Optimizer::flat_gradients(): every parameter's
// gradient is a view into it, so there is nothing to pack or unpack).
// The loss is a mean over the batch's masked positions, L = sum_r S_r / n with S_r the sum
// of rank r's per-position losses and n the batch's count of masked positions; rank r's
// backward gives the gradient of S_r / n_r (its own mean), so it scales its gradients by
// n_r / n before the sum, and the sum is the gradient of L: shards with more answer tokens
// weigh more, as they do in one process. Every rank knows n (it drew the whole batch);
// the losses S_r are summed in a second allreduce of one double. Every rank then holds the
// same gradient bits and applies the same update, so the weights stay identical.
//
// Compared with one process training the whole batch, only the order of float additions
// differs (each rank sums its rows, then the ranks are summed), so weights agree to float
// round-off, not bit for bit.
//
//   DataParallel parallel(communicator, model.named_parameters(), optimizer.flat_gradients());
//   tasks::Batch mine = parallel.shard(task.sample(batch_size, rng));
//   Tensor loss = cross_entropy(model.forward(mine.inputs), mine.targets, mine.mask);
//   loss.backward();
//   double global_loss = parallel.reduce(loss.item());   // gradients summed over ranks
//   optimizer.step();
#pragma once

#include <cstddef>
#include <vector>

#include "core/parameter.hpp"
#include "tasks/task.hpp"
#include "train/communicator.hpp"

namespace qkv::train {

struct RowRange {
  std::size_t begin = 0, end = 0;
};

// The rows [begin, end) of a batch of `rows` that `rank` of `ranks` trains. Throws
// std::invalid_argument when `rows` is not a multiple of `ranks`.
RowRange rank_rows(std::size_t rows, std::size_t rank, std::size_t ranks);

// The rows [begin, end) of a batch, with their masks, groups and distances.
tasks::Batch take_rows(const tasks::Batch& batch, RowRange rows);

class DataParallel {
 public:
  // flat_gradients is the buffer the parameters' gradients are views into (the optimizer's,
  // undefined when the parameters' dtypes differ). Throws std::invalid_argument when the
  // dtypes differ or the buffer does not hold exactly the parameters' gradients.
  DataParallel(Communicator& communicator, std::vector<core::NamedParameter> params,
               core::Tensor flat_gradients);

  // This rank's rows of a step's batch (remembered: reduce() weighs by them).
  tasks::Batch shard(const tasks::Batch& batch);
  // After backward on the shard whose loss (the mean over its masked positions) is `loss`:
  // every parameter's gradient becomes the whole batch's, the same on every rank; returns
  // the whole batch's loss. Throws std::runtime_error naming a parameter that backward did
  // not reach (its gradient would be missing from the sum on this rank only), and
  // std::logic_error naming one whose gradient is not its part of the flat buffer.
  double reduce(double loss);

 private:
  template <class T> void sum_gradients(double share);

  Communicator& communicator_;
  std::vector<core::NamedParameter> params_;
  core::Tensor flat_gradients_;
  std::size_t batch_tokens_ = 0, shard_tokens_ = 0;  // masked positions of the last shard()
};

}  // namespace qkv::train
