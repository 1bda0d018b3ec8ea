# `cmake --install <build> --prefix P` installs the libraries as a CMake package, so that a
# service outside this repository can write
#   find_package(molt 0.1 REQUIRED)
#   target_link_libraries(my-service PRIVATE molt::web molt::db)
#   molt_add_worker(my-worker ENTRIES my_entries.cpp)
# with CMAKE_PREFIX_PATH=P (docs/web.md, "Building outside this repository").
include(CMakePackageConfigHelpers)

if(MOLT_SANITIZE)
  # Its objects need the sanitizer's runtime, which a consumer would not link: install a dev
  # or release build.
  install(CODE "message(FATAL_ERROR \"a build with MOLT_SANITIZE=${MOLT_SANITIZE} is not installable\")"
    COMPONENT molt_dev)
endif()

set(MOLT_PACKAGE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/molt")
set(molt_libraries molt_core molt_codec molt_ipc molt_db molt_jobs molt_worker molt_web)
foreach(library IN LISTS molt_libraries)
  string(REPLACE "molt_" "" short "${library}")
  set_target_properties(${library} PROPERTIES EXPORT_NAME ${short})
endforeach()
set_target_properties(molt_asio PROPERTIES EXPORT_NAME asio)
set_target_properties(molt_msgpack PROPERTIES EXPORT_NAME msgpack)

install(TARGETS ${molt_libraries} molt_asio molt_msgpack
  EXPORT moltTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT molt_dev
  INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/molt"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT molt_dev)
install(EXPORT moltTargets NAMESPACE molt::
  DESTINATION "${MOLT_PACKAGE_DIR}" COMPONENT molt_dev)

configure_package_config_file(cmake/moltConfig.cmake.in
  "${PROJECT_BINARY_DIR}/moltConfig.cmake" INSTALL_DESTINATION "${MOLT_PACKAGE_DIR}")
# 0.x: a minor version may change the API, so only the same minor version is compatible.
write_basic_package_version_file("${PROJECT_BINARY_DIR}/moltConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/moltConfig.cmake" "${PROJECT_BINARY_DIR}/moltConfigVersion.cmake"
  cmake/MoltWorker.cmake
  DESTINATION "${MOLT_PACKAGE_DIR}" COMPONENT molt_dev)
