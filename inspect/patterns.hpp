// Pattern scores: how much of a head's attention goes where a known kind of head looks.
//
// A map A is one head on one example, T × T, A(i, j) = how much query position i attends
// to key position j (each row sums to 1). Each score is a mean of attention mass over
// query rows:
//
//   self      A(i, i)            rows 1..T-1
//   previous  A(i, i-1)          rows 1..T-1 (a pure previous-token head scores 1)
//   first     A(i, 0)            rows 1..T-1
//   sep       A(i, sep)          rows sep..T-1, the rows that read the answer
//   source    Σ_s A(i, s)        rows that predict an answer token, s over the prompt
//                                positions that token is read from (Task::answer_sources:
//                                copy j, reverse L-1-j, sort every copy of the token,
//                                agreement the subject, recall the queried key's value)
//
// Row 0 is left out of the first three: in a causal model it can only attend to itself. A
// score without rows (no SEP in the input, a task that names no sources) is empty. Over
// many examples the rows are pooled: a PatternTally adds maps and averages all their rows.
//
//   PositionRoles roles = position_roles(ids, task);   // ids as the model reads them
//   PatternTally tally;
//   tally.add(map, roles);
//   PatternScores s = tally.scores();                  // s.previous, s.source, ...
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "inspect/matrix.hpp"
#include "tasks/task.hpp"

namespace qkv::inspect {

// The positions of one input that the scores ask about.
struct PositionRoles {
  std::size_t length = 0;          // T
  std::optional<std::size_t> sep;  // the first SEP
  // Per query row (length entries): the positions holding what the token this row
  // predicts is read from; empty for a row that predicts no answer token with a source.
  std::vector<std::vector<std::size_t>> sources;
};

// `sequence` is what the model reads (`prompt SEP answer…`, possibly without SEP): row
// sep + j predicts answer token j, whose sources the task names for the prompt before SEP.
PositionRoles position_roles(const std::vector<tasks::Token>& sequence, const tasks::Task& task);

struct PatternScores {
  std::optional<double> self, previous, first, sep, source;
};

class PatternTally {
 public:
  // `map` is T × T with T = roles.length (std::invalid_argument naming both otherwise).
  void add(const Matrix& map, const PositionRoles& roles);
  PatternScores scores() const;

 private:
  struct Mean {
    double sum = 0;
    std::size_t rows = 0;
    void add(double v) { sum += v, ++rows; }
    std::optional<double> value() const;
  };
  Mean self_, previous_, first_, sep_, source_;
};

// The scores of one map.
PatternScores pattern_scores(const Matrix& map, const PositionRoles& roles);

}  // namespace qkv::inspect
