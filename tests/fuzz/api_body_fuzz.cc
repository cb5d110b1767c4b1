// libFuzzer target for the REST API's request bodies (controlplane/api/json_codec): arbitrary bytes
// as a body for parse_object_body and the member readers every handler uses. Beyond "no crash":
// a parsed body is always an object, and a string the readers accept never holds NUL (libpq would
// cut it).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "controlplane/api/json_codec.h"

using namespace inkwire::controlplane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (bool empty_ok : {false, true}) {
    auto parsed = parse_object_body(body, empty_ok);
    if (!parsed) {
      const int s = parsed.error().status;
      if (s != 400 && s != 422) std::abort();
      continue;
    }
    (void)only_members(*parsed, {"tunnel_name", "tls_mode", "description"});
    for (std::string_view name : {"tunnel_name", "tls_mode", "description", "csr_pem", "scope"}) {
      auto s = string_member(*parsed, name);
      if (s && *s && (*s)->find('\0') != std::string::npos) std::abort();
      auto n = nullable_string_member(*parsed, name);
      if (n && *n && **n && (**n)->find('\0') != std::string::npos) std::abort();
    }
  }
  return 0;
}
