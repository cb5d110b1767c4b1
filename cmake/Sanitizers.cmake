# -DINKWIRE_SANITIZE=ON builds everything with ASan+UBSan (scripts/test --sanitize uses it).
if(INKWIRE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# -DINKWIRE_FUZZ=ON (scripts/fuzz, clang): the libraries under test get coverage instrumentation too,
# otherwise libFuzzer sees only the fuzz target's own file and cannot steer into the parsers.
if(INKWIRE_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
