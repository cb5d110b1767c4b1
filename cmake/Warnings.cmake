# inkwire_warnings: an interface target every project target links, so warnings stay uniform.
add_library(inkwire_warnings INTERFACE)
target_compile_options(inkwire_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor -Wcast-align
  -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough
  -Wno-missing-field-initializers)
