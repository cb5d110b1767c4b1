#include "agent/envelope.h"

namespace inkwire::agent {

Envelope parse_envelope(proto::H2Headers&& headers) {
  Envelope envelope;
  for (auto& h : headers) {
    const std::string_view name = h.name;
    if (name == "inkbox-request-id") envelope.request_id = std::move(h.value);
    else if (name == "inkbox-route-kind") envelope.kind = std::move(h.value);
    else if (name == "inkbox-method") envelope.method = std::move(h.value);
    else if (name == "inkbox-path") envelope.path = std::move(h.value);
    else if (name == "inkbox-forwarded-for") envelope.forwarded_for = std::move(h.value);
    else if (name == "inkbox-sni-host") envelope.sni_host = std::move(h.value);
    else if (name == "inkbox-ws-id") envelope.ws_id = std::move(h.value);
    else if (name == "inkbox-tcp-id") envelope.tcp_id = std::move(h.value);
    else if (name.starts_with("inkbox-h-") && name.size() > 9) {
      envelope.forwarded.push_back({std::string(name.substr(9)), std::move(h.value)});
    }
  }
  return envelope;
}

}  // namespace inkwire::agent
