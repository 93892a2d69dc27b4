// Variant: one attention variant of a sweep, named in a short grammar and turned into the
// config overrides (`--set` assignments) that make it from the sweep's base config.
//
//   learned               the reference: projections learned (the base config as it is)
//   none                  projections none: Q = K = V = x and no Wo (raw dot products)
//   <letters>=<kind>      letters from q, k, v, o, each at most once; kind learned, identity
//                         or frozen (o: learned, frozen, none; o=identity means o=none)
//   qk=merged, qk=tied    one learned C × C matrix per head / Wk = Wq
//   clause+clause         several clauses at once: v=identity+o=none
//
// Names are canonical: letters in q, k, v, o order, `kq=identity` is `qk=identity`, so one
// variant has one run folder. The base config must be the reference attention (every
// projection learned, qk separate): a variant changes only the keys it names.
//
//   Variant v = parse_variant("qk=identity");
//   v.name        // "qk=identity"
//   v.overrides   // {"model.attention.wq=identity", "model.attention.wk=identity"}
//   std::vector<Variant> all = parse_variants(default_variant_names());
//
// A name outside the grammar is std::invalid_argument quoting it, saying what part is
// wrong, listing the grammar and suggesting the closest valid name.
#pragma once

#include <string>
#include <vector>

namespace qkv::ablate {

struct Variant {
  std::string name;                    // canonical
  std::vector<std::string> overrides;  // "model.attention.wq=identity", ...
};

Variant parse_variant(const std::string& name);

// Each name parsed; two names for one variant (`qk=identity,kq=identity`) or none at all is
// std::invalid_argument.
std::vector<Variant> parse_variants(const std::vector<std::string>& names);

// learned, none, q=identity, k=identity, qk=identity, v=identity, qk=frozen, qk=merged,
// qk=tied.
const std::vector<std::string>& default_variant_names();

// The grammar above in one line, for messages and --help.
std::string variant_grammar();

}  // namespace qkv::ablate
