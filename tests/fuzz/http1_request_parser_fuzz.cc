// The passthrough plaintext service's HTTP/1.x request parser (agent/http1_request_parser) reads
// decrypted third-party bytes. Properties: no crash or overread; `consumed` never exceeds the
// input; a body never exceeds the cap; and feeding the same bytes split at arbitrary points gives
// the same outcome (status, method, path, headers, body) as feeding them at once — the parser's
// resumable scans must not depend on how TCP happened to cut the stream.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "agent/http1_request_parser.h"

namespace {

using inkwire::agent::Http1Limits;
using inkwire::agent::Http1RequestParser;
using Status = Http1RequestParser::Status;

struct Outcome {
  Status status = Status::need_more;
  std::string method, path, body;
  std::vector<inkwire::proto::HeaderField> headers;
  int error_status = 0;
};

// Feeds `data` in pieces of the given sizes (the rest at once), keeping unconsumed bytes as a
// connection would, until the first request is complete or failed.
Outcome run(std::string_view data, const std::vector<std::size_t>& cuts, const Http1Limits& limits) {
  Http1RequestParser parser(limits);
  std::string pending;
  std::size_t offered = 0;
  std::size_t cut = 0;
  Outcome out;
  while (true) {
    if (offered < data.size()) {
      std::size_t n = cut < cuts.size() ? cuts[cut++] : data.size() - offered;
      n = std::min(n, data.size() - offered);
      pending.append(data.substr(offered, n));
      offered += n;
    }
    std::size_t consumed = 0;
    Status status = parser.feed(pending, consumed);
    if (consumed > pending.size()) std::abort();
    pending.erase(0, consumed);
    if (status == Status::head_complete) {
      status = parser.feed(pending, consumed = 0);
      if (consumed > pending.size()) std::abort();
      pending.erase(0, consumed);
    }
    if (status == Status::complete || status == Status::failed) {
      out.status = status;
      break;
    }
    if (offered == data.size() && (status == Status::need_more || status == Status::head_complete)) {
      out.status = Status::need_more;
      break;
    }
  }
  if (out.status == Status::complete) {
    out.method = parser.request().method;
    out.path = parser.request().path;
    out.body = parser.request().body;
    out.headers = parser.request().headers;
    if (out.body.size() > limits.max_body_bytes) std::abort();
  } else if (out.status == Status::failed) {
    out.error_status = parser.error().status;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  FuzzedDataProvider provider(bytes, size);
  Http1Limits limits;
  limits.max_header_bytes = provider.ConsumeIntegralInRange<std::size_t>(64, 4096);
  limits.max_body_bytes = provider.ConsumeIntegralInRange<std::uint64_t>(0, 4096);
  std::vector<std::size_t> cuts;
  const std::size_t pieces = provider.ConsumeIntegralInRange<std::size_t>(0, 16);
  for (std::size_t i = 0; i < pieces; ++i) cuts.push_back(provider.ConsumeIntegralInRange<std::size_t>(1, 64));
  const std::string data = provider.ConsumeRemainingBytesAsString();

  const Outcome whole = run(data, {}, limits);
  const Outcome split = run(data, cuts, limits);
  if (whole.status != split.status || whole.error_status != split.error_status || whole.method != split.method ||
      whole.path != split.path || whole.body != split.body || whole.headers != split.headers) {
    std::abort();
  }
  return 0;
}
