# Run by CTest (see CMakeLists.txt here): cmake -DQKV_BUILD_DIR=... -DEXAMPLE_DIR=...
# -DWORK_DIR=... -DCMAKEDIR=lib/cmake/qkv -DGENERATOR=... -DCXX_COMPILER=...
# [-DCOMPILER_LAUNCHER=...] [-DBUILD_TYPE=...] -P out_of_tree.cmake
#
# 1. installs QKV_BUILD_DIR into WORK_DIR/prefix;
# 2. configures and builds EXAMPLE_DIR standalone, with only that prefix to find qkv in,
#    and checks it found the installed package (not the build tree);
# 3. shows that the installed qkv, which lacks the example's layers, rejects attention.yaml;
# 4. trains attention.yaml (bilinear_attention) for 20 steps with the example's my_qkv;
# 5. evaluates the checkpoint with my_qkv and checks the one JSON line.
# Any failure stops the script with the step, the command, its exit code and its output.
cmake_minimum_required(VERSION 3.16)

foreach(required QKV_BUILD_DIR EXAMPLE_DIR WORK_DIR CMAKEDIR GENERATOR CXX_COMPILER)
  if(NOT ${required})
    message(FATAL_ERROR "out_of_tree.cmake: -D${required}=... is required")
  endif()
endforeach()

# run(<step> <expected exit: 0 | nonzero> <command...>): output in run_output.
function(run step expected)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if((expected STREQUAL "0" AND NOT code STREQUAL "0") OR
     (expected STREQUAL "nonzero" AND code STREQUAL "0"))
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "${step}: expected exit code ${expected}, got ${code}\n"
                        "command: ${command}\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  set(run_output "${out}${err}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/build)
set(run_dir ${WORK_DIR}/run)
file(REMOVE_RECURSE ${WORK_DIR})

run("install qkv (does ${QKV_BUILD_DIR} hold a complete build?)" 0
    ${CMAKE_COMMAND} --install ${QKV_BUILD_DIR} --prefix ${prefix})

run("configure the example against the installed qkv" 0
    ${CMAKE_COMMAND} -S ${EXAMPLE_DIR} -B ${build} -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_CXX_COMPILER_LAUNCHER=${COMPILER_LAUNCHER}
    -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
file(STRINGS ${build}/CMakeCache.txt found_qkv REGEX "^qkv_DIR:")
if(NOT found_qkv STREQUAL "qkv_DIR:PATH=${prefix}/${CMAKEDIR}")
  message(FATAL_ERROR "the example found qkv at '${found_qkv}'; expected the installed "
                      "package, qkv_DIR:PATH=${prefix}/${CMAKEDIR}")
endif()
run("build the example" 0 ${CMAKE_COMMAND} --build ${build} --parallel 2)

run("the installed qkv, without the example's layers, rejects attention.yaml" nonzero
    ${prefix}/bin/qkv train ${EXAMPLE_DIR}/attention.yaml --out ${WORK_DIR}/rejected)
if(NOT run_output MATCHES "bilinear_attention")
  message(FATAL_ERROR "qkv's error does not name the unknown type bilinear_attention:\n"
                      "${run_output}")
endif()

run("train attention.yaml with my_qkv" 0
    ${build}/my_qkv train ${EXAMPLE_DIR}/attention.yaml --out ${run_dir}
    --set train.steps=20 --set train.eval_every=10 --set train.eval_samples=64)
foreach(file config.yaml metrics.jsonl last.safetensors best.safetensors)
  if(NOT EXISTS ${run_dir}/${file})
    message(FATAL_ERROR "my_qkv train wrote no ${run_dir}/${file}:\n${run_output}")
  endif()
endforeach()

run("evaluate the checkpoint with my_qkv" 0
    ${build}/my_qkv eval ${run_dir}/last.safetensors --samples 32)
set(eval_line "^{\"loss\":[^\n]*,\"token_acc\":[^\n]*,\"seq_acc\":[^\n]*,\"samples\":32}\n$")
if(NOT run_output MATCHES "${eval_line}")
  message(FATAL_ERROR "my_qkv eval printed no JSON line with loss, token_acc, seq_acc and "
                      "samples 32:\n${run_output}")
endif()
message(STATUS "out of tree: built ${build}/my_qkv against ${prefix}; eval: ${run_output}")
