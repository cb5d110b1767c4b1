# The passthrough plaintext service (PROTOCOL.md §6.5) and the upstream request builder it shares
# with the data-plane session. Included from agent/CMakeLists.txt after inkwire_agent is defined
# (`include(plaintext.cmake)`); the guard makes a second include (tests/) a no-op.
include_guard(GLOBAL)
target_sources(inkwire_agent PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/upstream_request_builder.cc
  ${CMAKE_CURRENT_LIST_DIR}/plaintext_request.cc
  ${CMAKE_CURRENT_LIST_DIR}/http1_request_parser.cc
  ${CMAKE_CURRENT_LIST_DIR}/deadline_watchdog.cc
  ${CMAKE_CURRENT_LIST_DIR}/plaintext_forwarding.cc
  ${CMAKE_CURRENT_LIST_DIR}/plaintext_h1.cc
  ${CMAKE_CURRENT_LIST_DIR}/plaintext_h2.cc
  ${CMAKE_CURRENT_LIST_DIR}/plaintext_server.cc
)
