// The qkv executable: the qkv command with the built-in layers (see app/main.hpp).
#include "app/main.hpp"

int main(int argc, char** argv) { return qkv::app::main(argc, argv); }
