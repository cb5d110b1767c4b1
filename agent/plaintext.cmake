# The passthrough plaintext service (PROTOCOL.md §6.5), the upstream request builder it shares with
# the data-plane session, the WebSocket upstream handshake it shares with websocket_forwarder.cc,
# and its byte splice. Included from agent/CMakeLists.txt after inkwire_agent is defined
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
  ${CMAKE_CURRENT_LIST_DIR}/upstream_websocket.cc
  ${CMAKE_CURRENT_LIST_DIR}/byte_splice.cc
)
