// Pattern scores of attention maps (see patterns.hpp).
#include "inspect/patterns.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace qkv::inspect {

PositionRoles position_roles(const std::vector<tasks::Token>& sequence, const tasks::Task& task) {
  PositionRoles roles;
  roles.length = sequence.size();
  roles.sources.resize(sequence.size());
  const auto sep = std::find(sequence.begin(), sequence.end(), tasks::Task::sep_id);
  if (sep == sequence.end()) return roles;
  roles.sep = static_cast<std::size_t>(sep - sequence.begin());
  const std::vector<tasks::Token> prompt(sequence.begin(), sep);
  const std::vector<std::vector<std::size_t>> sources = task.answer_sources(prompt);
  for (std::size_t j = 0; j < sources.size() && *roles.sep + j < roles.length; ++j) {
    for (std::size_t s : sources[j])
      if (s >= prompt.size())
        throw std::invalid_argument("task " + task.name() + ": answer_sources names position " +
                                    std::to_string(s) + " of a prompt of " +
                                    std::to_string(prompt.size()) + " tokens");
    roles.sources[*roles.sep + j] = sources[j];
  }
  return roles;
}

std::optional<double> PatternTally::Mean::value() const {
  if (rows == 0) return std::nullopt;
  return sum / static_cast<double>(rows);
}

void PatternTally::add(const Matrix& map, const PositionRoles& roles) {
  const std::size_t T = roles.length;
  if (map.rows != T || map.cols != T || roles.sources.size() != T) {
    throw std::invalid_argument("PatternTally: a map of " + std::to_string(map.rows) + " x " +
                                std::to_string(map.cols) + " for an input of " +
                                std::to_string(T) + " positions (" +
                                std::to_string(roles.sources.size()) + " source rows)");
  }
  for (std::size_t i = 1; i < T; ++i) {
    self_.add(map(i, i));
    previous_.add(map(i, i - 1));
    first_.add(map(i, 0));
  }
  if (roles.sep)
    for (std::size_t i = *roles.sep; i < T; ++i) sep_.add(map(i, *roles.sep));
  for (std::size_t i = 0; i < T; ++i) {
    if (roles.sources[i].empty()) continue;
    double mass = 0;
    for (std::size_t s : roles.sources[i]) mass += map(i, s);
    source_.add(mass);
  }
}

PatternScores PatternTally::scores() const {
  return {self_.value(), previous_.value(), first_.value(), sep_.value(), source_.value()};
}

PatternScores pattern_scores(const Matrix& map, const PositionRoles& roles) {
  PatternTally tally;
  tally.add(map, roles);
  return tally.scores();
}

}  // namespace qkv::inspect
