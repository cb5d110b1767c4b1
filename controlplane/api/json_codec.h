#pragma once
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/encoding.h"
#include "controlplane/ca/certificate_authority.h"
#include "controlplane/repo/records.h"
#include "controlplane/service/service_types.h"

namespace inkwire::controlplane {

// Wire shapes of PROTOCOL.md §2.2 and the admin endpoints. Writers produce compact JSON;
// readers refuse unknown members and wrong types with a 422 detail that names the member.
struct TunnelView {
  const TunnelRecord& tunnel;
  const std::string& public_host;
  const std::string& zone;
};

// Appends the Tunnel JSON (§2.2) to `out`. Written directly rather than through a json::object:
// listing 10,000 tunnels is the hot path of the list endpoint (bench/controlplane).
void append_tunnel_json(std::string& out, const TunnelView& view);
// (JSON string literals: inkwire::append_json_string in common/encoding.h.)
boost::json::object api_key_to_json(const ApiKeyRecord& key);
boost::json::object audit_to_json(const AuditRecord& entry);
boost::json::object signed_cert_to_json(const IssuedCertificate& cert);

// Parses a request body that must be one JSON object (400 if it is not JSON, 422 if not an object).
// An empty body is an empty object when `empty_ok`.
ServiceResult<boost::json::object> parse_object_body(std::string_view body, bool empty_ok);

// Refuses members outside `allowed` (422 naming the first one).
ServiceResult<Unit> only_members(const boost::json::object& o, std::initializer_list<std::string_view> allowed);

// Member readers: absent -> nullopt; wrong type -> 422 naming the member.
ServiceResult<std::optional<std::string>> string_member(const boost::json::object& o, std::string_view name);
// For "string or null": outer optional = present, inner = null.
ServiceResult<std::optional<std::optional<std::string>>> nullable_string_member(const boost::json::object& o,
                                                                                std::string_view name);

}  // namespace inkwire::controlplane
