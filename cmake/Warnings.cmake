# inkwire_warnings: an interface target every project target links, so warnings stay uniform.
add_library(inkwire_warnings INTERFACE)
target_compile_options(inkwire_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor -Wcast-align
  -Woverloaded-virtual -Wimplicit-fallthrough
  -Wno-missing-field-initializers
  # (-Wnull-dereference is left out: GCC 12 reports it inside Asio headers.)
  # GCC 12 false positive on Asio coroutine frames (operator new/delete of awaitable_frame_base).
  -Wno-mismatched-new-delete)
