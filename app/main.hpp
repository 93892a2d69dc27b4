// qkv::app::main: the whole qkv command (every verb: train, eval, ...) as a function, so
// that a program of your own runs it with your own layers linked in. A layer registers
// itself with one line in its .cpp (layers/registry.hpp); link that .cpp's object into
// your program, call qkv::app::main from main(), and `my_qkv train cfg.yaml` trains
// configs that name your layers, and `my_qkv eval run/best.safetensors` evaluates their
// checkpoints. The qkv executable is exactly this with only the built-in layers.
//
//   // my_qkv.cpp, linked with bilinear_attention.cpp (which registers itself)
//   #include "app/main.hpp"
//   int main(int argc, char** argv) { return qkv::app::main(argc, argv); }
//
// It tunes the allocator for training first (core::tune_allocator), then parses argv,
// runs the chosen verb with output on stdout, and returns the exit code for main to
// return (0 on success; cli.hpp lists the others). Errors go to stderr on one line.
#pragma once

namespace qkv::app {

int main(int argc, char** argv);

}  // namespace qkv::app
