// ablate/variant: the variant grammar, its canonical names, the config overrides each
// name makes, and the errors of names outside it.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "ablate/variant.hpp"

using qkv::ablate::parse_variant;
using qkv::ablate::parse_variants;
using qkv::ablate::Variant;

namespace {

using Overrides = std::vector<std::string>;

void check_variant(const std::string& name, const std::string& canonical, const Overrides& overrides) {
  CAPTURE(name);
  const Variant v = parse_variant(name);
  CHECK(v.name == canonical);
  CHECK(v.overrides == overrides);
}

}  // namespace

TEST_CASE("variant: the default list and what each one sets") {
  const std::string a = "model.attention.";
  check_variant("learned", "learned", {a + "projections=learned"});
  check_variant("none", "none", {a + "projections=none"});
  check_variant("q=identity", "q=identity", {a + "wq=identity"});
  check_variant("k=identity", "k=identity", {a + "wk=identity"});
  check_variant("qk=identity", "qk=identity", {a + "wk=identity", a + "wq=identity"});
  check_variant("v=identity", "v=identity", {a + "wv=identity"});
  check_variant("qk=frozen", "qk=frozen", {a + "wk=frozen", a + "wq=frozen"});
  check_variant("qk=merged", "qk=merged", {a + "qk=merged"});
  check_variant("qk=tied", "qk=tied", {a + "qk=tied"});
  CHECK(parse_variants(qkv::ablate::default_variant_names()).size() == 9);
}

TEST_CASE("variant: the grammar is general, and names are canonical") {
  const std::string a = "model.attention.";
  check_variant("kq=identity", "qk=identity", {a + "wk=identity", a + "wq=identity"});
  check_variant("vq=frozen", "qv=frozen", {a + "wq=frozen", a + "wv=frozen"});
  check_variant("o=none", "o=none", {a + "wo=none"});
  check_variant("o=identity", "o=none", {a + "wo=none"});  // no Wo: the heads side by side
  check_variant("qkvo=frozen", "qkvo=frozen",
                {a + "wk=frozen", a + "wo=frozen", a + "wq=frozen", a + "wv=frozen"});
  check_variant("o=none+v=identity", "v=identity+o=none", {a + "wo=none", a + "wv=identity"});
  check_variant("q=identity+k=identity", "qk=identity", {a + "wk=identity", a + "wq=identity"});
  check_variant("qk=merged+v=frozen", "qk=merged+v=frozen", {a + "qk=merged", a + "wv=frozen"});
  check_variant("kq=tied", "qk=tied", {a + "qk=tied"});
  check_variant("v=learned", "v=learned", {a + "wv=learned"});
}

TEST_CASE("variant: a bad name says what is wrong, lists the grammar and suggests a name") {
  const auto check_bad = [](const std::string& name, const std::vector<std::string>& parts) {
    CAPTURE(name);
    try {
      parse_variant(name);
      FAIL("no error");
    } catch (const std::invalid_argument& error) {
      const std::string message = error.what();
      CAPTURE(message);
      CHECK(message.rfind("variant '" + name + "': ", 0) == 0);
      CHECK(message.find("a variant is learned, none, <letters>=<kind>") != std::string::npos);
      for (const std::string& part : parts) CHECK(message.find(part) != std::string::npos);
    }
  };
  check_bad("qk=identiy", {"unknown kind 'identiy'", "did you mean 'qk=identity'?"});
  check_bad("lerned", {"neither learned, none nor <letters>=<kind>", "did you mean 'learned'?"});
  check_bad("qx=identity", {"unknown letter 'x' (letters: q, k, v, o)"});
  check_bad("qq=frozen", {"'q' is given twice"});
  check_bad("qk=merged+q=frozen", {"'q' is given twice"});
  check_bad("v=merged", {"'merged' applies to qk only"});
  check_bad("q=none", {"'none' applies to o only"});
  check_bad("=identity", {"no letters before '='"});
  check_bad("none+v=identity", {"'none' stands alone"});
  check_bad("", {"the name is empty"});
}

TEST_CASE("variant: a list names each variant once") {
  CHECK_THROWS_WITH_AS(parse_variants({"qk=identity", "learned", "kq=identity"}),
                       "variants 'qk=identity' and 'kq=identity' are the same variant (qk=identity)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_variants({}), doctest::Contains("no variants given"),
                       std::invalid_argument);
}
