# `cmake --install <build> --prefix P` makes P a qkv package that a user's CMakeLists finds
# with find_package(qkv) and links as qkv::core, qkv::layers, ..., qkv::app:
#
#   P/include/qkv/<floor>/*.hpp        included as "core/tensor.hpp" (see qkv_options)
#   P/lib/libqkv_<floor>.a             the static libraries
#   P/bin/qkv                          the command, with the built-in layers
#   P/lib/cmake/qkv/qkvConfig.cmake    + qkvConfigVersion.cmake and qkvTargets.cmake
#
# Included by the top-level CMakeLists once every floor (QKV_FLOORS) exists.
include(CMakePackageConfigHelpers)

set(QKV_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/qkv)

add_library(qkv::options ALIAS qkv_options)
set_target_properties(qkv_options PROPERTIES EXPORT_NAME options)
install(TARGETS qkv_options EXPORT qkvTargets)

foreach(floor IN LISTS QKV_FLOORS)
  set_target_properties(qkv_${floor} PROPERTIES EXPORT_NAME ${floor})
  install(TARGETS qkv_${floor} EXPORT qkvTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  # Every header: a public one may include an internal one (core/tensor.hpp's node.hpp).
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${floor}/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/qkv/${floor}
          FILES_MATCHING PATTERN "*.hpp")
endforeach()

install(TARGETS qkv RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(EXPORT qkvTargets NAMESPACE qkv:: FILE qkvTargets.cmake
        DESTINATION ${QKV_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/qkvConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/qkvConfig.cmake
                              INSTALL_DESTINATION ${QKV_INSTALL_CMAKEDIR})
# 0.x: a minor version may change the API, so only the same 0.minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/qkvConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/qkvConfig.cmake ${PROJECT_BINARY_DIR}/qkvConfigVersion.cmake
        DESTINATION ${QKV_INSTALL_CMAKEDIR})
