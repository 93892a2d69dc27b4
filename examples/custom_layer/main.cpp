// my_qkv: the qkv command with this folder's layers linked in. Every verb works as qkv's
// own does (`my_qkv train attention.yaml`, `my_qkv eval run/best.safetensors`, `my_qkv
// --help`), and configs and checkpoints may name gated_ffn and bilinear_attention, which
// registered themselves (one line at the end of each .cpp) before main() runs.
#include "app/main.hpp"

int main(int argc, char** argv) { return qkv::app::main(argc, argv); }
