# ccache makes rebuilds in CI (same machine as the session, warm cache) nearly free.
find_program(INKWIRE_CCACHE ccache)
if(INKWIRE_CCACHE)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${INKWIRE_CCACHE})
endif()
