#pragma once
// A request the relay delivered on an intake (PROTOCOL.md §4.6), as the agent's tasks see it: the
// meta headers parsed, the forwarded headers without their inkbox-h- prefix, and the body as a
// stream that fills while the relay still receives it from the third party.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agent/tunnel_stream.h"
#include "proto/h2_session.h"
#include "proto/header_rules.h"

namespace inkwire::agent {

struct Envelope {
  std::string request_id;
  std::string kind;  // webhook (also when absent or unknown), ws-upgrade, tcp-stream
  std::string method = "GET";
  std::string path = "/";
  std::string forwarded_for;
  std::string sni_host;
  std::string ws_id;
  std::string tcp_id;
  std::vector<proto::HeaderField> forwarded;  // inkbox-h-* without the prefix, in order
  std::shared_ptr<TunnelStream> body;         // the intake stream's DATA
  // The response post opened for it (the last one), so the intake is reset only after the relay
  // has the answer: an intake reset first could make the relay fail or redeliver the request.
  mutable std::shared_ptr<TunnelStream> answer;
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();

  // The first forwarded value of `name` (lowercase), or nullptr.
  const std::string* header(std::string_view name) const {
    for (const auto& h : forwarded) {
      if (h.name == name) return &h.value;
    }
    return nullptr;
  }
};

// The meta and forwarded headers of an intake's 200 reply (§4.6), taken apart. Names arrive
// lowercase (§4.1); inkbox-* fields the agent does not use are ignored, as are non-inkbox fields;
// `body` is left for the caller. An envelope without a request id is one the SDKs drop.
Envelope parse_envelope(proto::H2Headers&& headers);

}  // namespace inkwire::agent
