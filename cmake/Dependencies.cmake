# Every dependency comes from Debian by package name (scripts/setup installs them). The
# installed package finds the same ones again: keep cmake/moltConfig.cmake.in in step.
include(GNUInstallDirs)
find_package(Threads REQUIRED)
find_package(Boost 1.81.0 EXACT CONFIG REQUIRED COMPONENTS json url)
find_package(CLI11 CONFIG REQUIRED)
find_package(ZLIB REQUIRED)  # molt::web gzips answers (compression.cpp)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)  # molt::web signs sessions (session.cpp)
# RE2 (libre2-dev): the pattern rule's matcher (src/codec/pattern.cpp), linear in the text
# whatever the expression. Its static library: a program carries RE2 only when it uses a
# pattern, and no libre2.so of one soversion (the wheel's molt-worker runs elsewhere).
find_path(RE2_INCLUDE_DIR re2/re2.h REQUIRED)
find_library(RE2_STATIC_LIBRARY NAMES libre2.a REQUIRED)

# msgpack-cxx: Debian's package, unpacked by scripts/setup into .deps/ (see the comment there).
find_path(MSGPACK_INCLUDE_DIR msgpack.hpp
  HINTS "${PROJECT_SOURCE_DIR}/.deps/msgpack/usr/include" REQUIRED)
add_library(molt_msgpack INTERFACE)
# Installed, the package's config finds msgpack.hpp again (cmake/moltConfig.cmake.in).
target_include_directories(molt_msgpack SYSTEM INTERFACE "$<BUILD_INTERFACE:${MSGPACK_INCLUDE_DIR}>")
target_compile_definitions(molt_msgpack INTERFACE MSGPACK_NO_BOOST)

# Asio is compiled once, in molt_core (src/core/asio_impl.cpp), not in every translation unit.
add_library(molt_asio INTERFACE)
target_link_libraries(molt_asio INTERFACE Boost::headers Threads::Threads)
# A request holds a few coroutine frames and operations at once; Asio's per-thread recycling
# cache keeps 2 blocks per purpose by default, so the rest went to memalign/free every request.
target_compile_definitions(molt_asio INTERFACE BOOST_ASIO_SEPARATE_COMPILATION
                                               BOOST_ASIO_NO_DEPRECATED
                                               BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE=8)
