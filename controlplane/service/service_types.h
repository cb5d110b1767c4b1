#pragma once
#include <optional>
#include <string>

#include "common/expected.h"
#include "common/uuid.h"
#include "controlplane/repo/records.h"

namespace inkwire::controlplane {

// A refusal the API turns into an HTTP status with {"detail": ...}. The status is chosen by the
// service because the rules (PROTOCOL.md §2.5, §8 A26/A33) are about meaning, not transport.
struct ServiceError {
  int status = 500;
  std::string detail;
};

template <typename T>
using ServiceResult = Expected<T, ServiceError>;

inline ServiceError not_found() { return {404, "tunnel not found"}; }
inline ServiceError unavailable() { return {503, "database unavailable, try again"}; }

// The authenticated caller of one request.
struct Caller {
  Uuid organization_id;
  Uuid api_key_id;
  KeyScope scope = KeyScope::member;
  std::optional<int> organization_daily_create_limit;
  std::string source_ip;

  bool is_admin() const { return scope == KeyScope::admin; }
  Actor actor() const { return Actor{organization_id, api_key_id, source_ip}; }
};

}  // namespace inkwire::controlplane
