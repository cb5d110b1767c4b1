// libFuzzer target: arbitrary bytes into the ClientHello parser, which reads what any third party
// sends to the edge's port 443 before anything else is known about it. Besides "no crash, no
// sanitizer report" it checks what the edge's read loop relies on, over every prefix of the input
// (the edge re-parses the growing buffer as bytes arrive):
//   * need_more always asks for more than it has and never beyond the bound;
//   * once a prefix gets a final status, every longer prefix gets the same one (and the same SNI and
//     ALPN when complete): in particular a prefix of a complete hello is never malformed;
//   * a complete SNI is a non-empty lowercased name of [a-z0-9.-_] with no trailing dot.
// The first input byte picks max_bytes, so small bounds reach the too_large paths.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "proto/client_hello.h"

namespace {

using inkwire::proto::ClientHelloResult;
using inkwire::proto::ClientHelloStatus;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_info(const ClientHelloResult& r) {
  if (r.info.sni) {
    const auto& s = *r.info.sni;
    check(!s.empty() && s.back() != '.');
    for (const char c : s)
      check((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_');
  }
  for (const auto& p : r.info.alpn) check(!p.empty() && p.size() <= 255);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  constexpr std::size_t kBounds[] = {16384, 64, 200, 1024};
  const std::size_t max_bytes = kBounds[data[0] & 0x03];
  // Every prefix makes this quadratic; 8 KiB keeps one input within milliseconds.
  const std::span<const std::uint8_t> input(data + 1, std::min<std::size_t>(size - 1, 8192));

  std::optional<ClientHelloResult> final_result;
  for (std::size_t n = 0; n <= input.size(); ++n) {
    const ClientHelloResult r = inkwire::proto::parse_client_hello(input.first(n), max_bytes);
    if (r.status == ClientHelloStatus::need_more) {
      check(!final_result);
      check(r.bytes_needed > n && r.bytes_needed <= max_bytes);
      check(!r.info.sni && r.info.alpn.empty());
      continue;
    }
    if (r.status == ClientHelloStatus::complete) check_info(r);
    if (!final_result) {
      final_result = r;
      continue;
    }
    check(r.status == final_result->status);
    check(r.info.sni == final_result->info.sni && r.info.alpn == final_result->info.alpn);
    check(r.info.legacy_version == final_result->info.legacy_version);
    check(r.info.has_supported_versions == final_result->info.has_supported_versions);
  }
  return 0;
}
