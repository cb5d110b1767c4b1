# Every dependency comes from a Debian 12 package (scripts/install-deps installs them).
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED COMPONENTS json url)
find_package(OpenSSL 3 REQUIRED)
find_package(prometheus-cpp REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx)
pkg_check_modules(TOMLPP REQUIRED IMPORTED_TARGET tomlplusplus)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
if(INKWIRE_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(INKWIRE_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

# Asio and Beast are compiled once, in inkwire_asio (common/asio_impl.cc, common/beast_impl.cc);
# every target that includes them links it and gets these definitions.
add_library(inkwire_asio_config INTERFACE)
target_compile_definitions(inkwire_asio_config INTERFACE
  BOOST_ASIO_SEPARATE_COMPILATION
  BOOST_BEAST_SEPARATE_COMPILATION
  BOOST_ASIO_NO_DEPRECATED)
target_link_libraries(inkwire_asio_config INTERFACE Boost::headers Threads::Threads OpenSSL::SSL OpenSSL::Crypto)
