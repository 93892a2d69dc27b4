// custom_layer_demo: trains the model of config.yaml (whose blocks use the user-defined
// gated_ffn) for a few steps and prints the falling loss.
//
//   ./custom_layer_demo [config.yaml]
#include <cstdio>
#include <exception>

#include "core/blas.hpp"
#include "examples/custom_layer/train_demo.hpp"

int main(int argc, char** argv) {
  const char* config = argc > 1 ? argv[1] : CUSTOM_LAYER_DIR "/config.yaml";
  try {
    qkv::core::set_blas_threads(1);
    const auto losses = example::train_demo(config, stdout);
    std::printf("loss %.4f -> %.4f\n", losses.front(), losses.back());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "custom_layer_demo: %s\n", e.what());
    return 1;
  }
  return 0;
}
