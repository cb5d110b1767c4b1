// libFuzzer target: the agent's response post (POST /_system/response/{id}, PROTOCOL.md §4.7) as
// parse_response_post reads it. The input is turned into a header list whose names come mostly
// from a dictionary of the names that matter (inkbox-status, inkbox-h-set-cookie, hop-by-hop ones
// behind inkbox-h-, ...) with fuzzer-chosen case, and whose values are arbitrary bytes. Besides
// "no crash, no sanitizer report" it traps when the result breaks what the relay relies on before
// it answers the third party:
//   * on success the status is 100..599 and came from exactly one inkbox-status field;
//   * no output header is inkbox-*, hop-by-hop (connection, keep-alive, transfer-encoding, upgrade,
//     te, trailer, proxy-authenticate, proxy-authorization, proxy-connection) or content-length;
//   * every output name is a lowercase token and every value is trimmed and free of CR, LF, NUL
//     and any other control byte but HTAB;
//   * every output header comes from an inkbox-h- field of the post, in posted order, and the
//     reason and request id are taken from the post as documented.
// Integer choices come from the end of the input (FuzzedDataProvider), strings from the front.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/header_rules.h"
#include "proto/response_post.h"

namespace {

using namespace inkwire::proto;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr std::array<std::string_view, 30> kNames = {
    "inkbox-status",
    "inkbox-request-id",
    "inkbox-reason",
    "inkbox-h-set-cookie",
    "inkbox-h-x",
    "inkbox-h-content-type",
    "inkbox-h-content-length",
    "inkbox-h-connection",
    "inkbox-h-keep-alive",
    "inkbox-h-transfer-encoding",
    "inkbox-h-upgrade",
    "inkbox-h-te",
    "inkbox-h-trailer",
    "inkbox-h-proxy-authenticate",
    "inkbox-h-proxy-authorization",
    "inkbox-h-proxy-connection",
    "inkbox-h-inkbox-reason",
    "inkbox-h-inkbox-status",
    "inkbox-h-inkbox-h-x",
    "inkbox-h-",
    "inkbox-h-:status",
    "inkbox-h-x y",
    "inkbox-h-location",
    "inkbox-x",
    "inkbox-",
    "x-tunnel-id",
    "x-tunnel-secret",
    "content-type",
    "set-cookie",
    "connection",
};

// The dropped set, spelled out here rather than taken from the code under test.
constexpr std::array<std::string_view, 10> kForbidden = {
    "connection", "keep-alive",          "transfer-encoding",   "upgrade",          "te",
    "trailer",    "proxy-authenticate", "proxy-authorization", "proxy-connection", "content-length",
};

constexpr std::string_view kValues[] = {
    "200", "599", "100", "099", "600", " 200", "abc", "", "a=1, b=2", "a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT, b=2",
    " reason ", "a\r\nb", std::string_view("x\0y", 3), "\t",
};

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool has_prefix_icase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && lowercase(s.substr(0, prefix.size())) == prefix;
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool clean_value(std::string_view v) {
  if (!v.empty() && (is_ows(v.front()) || is_ows(v.back()))) return false;
  return std::none_of(v.begin(), v.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return (c < 0x20 && c != '\t') || c == 0x7F;
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  std::vector<HeaderField> post;
  const std::size_t count = fdp.ConsumeIntegralInRange<std::size_t>(0, 24);
  for (std::size_t i = 0; i < count && fdp.remaining_bytes() > 0; ++i) {
    HeaderField f;
    const std::uint8_t pick = fdp.ConsumeIntegral<std::uint8_t>();
    if (pick < 200) {
      f.name = kNames[pick % kNames.size()];
      // Names are matched without case: sometimes shout part of it.
      if (fdp.ConsumeBool()) {
        const std::uint8_t mask = fdp.ConsumeIntegral<std::uint8_t>();
        for (std::size_t k = 0; k < f.name.size(); ++k)
          if ((mask >> (k % 8)) & 1) f.name[k] = static_cast<char>(std::toupper(static_cast<unsigned char>(f.name[k])));
      }
      if (pick >= 150) f.name += fdp.ConsumeRandomLengthString(16);  // inkbox-h-x + anything
    } else {
      f.name = fdp.ConsumeRandomLengthString(24);
    }
    const std::uint8_t vpick = fdp.ConsumeIntegral<std::uint8_t>();
    if (vpick < 64) {
      f.value = kValues[vpick % std::size(kValues)];
    } else {
      f.value = fdp.ConsumeRandomLengthString(96);
    }
    post.push_back(std::move(f));
  }

  const auto result = parse_response_post(post);

  std::size_t statuses = 0;
  for (const HeaderField& f : post) statuses += lowercase(f.name) == "inkbox-status";
  if (!result) {
    const PostError& e = result.error();
    check(e.post_status == 400 && e.third_party_status == 502 && !e.reason.empty());
    switch (e.code) {
      case PostError::Code::missing_status: check(statuses == 0); break;
      case PostError::Code::repeated_status: check(statuses >= 2); break;
      case PostError::Code::bad_status: check(statuses >= 1); break;
    }
    return 0;
  }
  const ResponsePost& r = *result;
  check(statuses == 1);
  check(r.status >= 100 && r.status <= 599);
  for (const HeaderField& f : post) {
    if (lowercase(f.name) == "inkbox-status") check(parse_post_status(f.value) == r.status);
  }
  // The request id is the first non-empty one posted, as posted.
  std::string request_id;
  for (const HeaderField& f : post) {
    if (lowercase(f.name) == "inkbox-request-id" && !f.value.empty()) {
      request_id = f.value;
      break;
    }
  }
  check(r.request_id == request_id);
  check(clean_value(r.reason));

  // Output headers, each matched in posted order to an inkbox-h- field it may come from.
  std::size_t from = 0;
  for (const HeaderField& h : r.headers) {
    check(!h.name.empty() && h.name == lowercase(h.name) && is_token(h.name));
    check(!has_prefix_icase(h.name, "inkbox-"));
    check(std::find(kForbidden.begin(), kForbidden.end(), h.name) == kForbidden.end());
    check(clean_value(h.value));
    check(h.value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
    for (; from < post.size(); ++from) {
      const HeaderField& p = post[from];
      if (!has_prefix_icase(p.name, "inkbox-h-") || lowercase(p.name.substr(9)) != h.name) continue;
      const std::string_view v = trim(p.value);
      // set-cookie may be split into several cookies, all from the same posted field.
      if (h.name == "set-cookie" ? v.find(h.value) != std::string_view::npos : v == h.value) break;
    }
    check(from < post.size());
    if (h.name != "set-cookie") ++from;
  }
  return 0;
}
