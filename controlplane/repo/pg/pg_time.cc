#include "controlplane/repo/pg/pg_time.h"

#include <string>

#include "common/time_format.h"

namespace inkwire::controlplane {

Timestamp parse_pg_timestamptz(std::string_view text) {
  // The offset is the last '+' or '-' after the time part (position 19 onwards).
  const auto sign = text.find_last_of("+-");
  if (sign != std::string_view::npos && sign >= 19 && text.size() - sign == 3) {
    std::string with_minutes(text);
    with_minutes.append(":00");
    if (auto t = parse_rfc3339(with_minutes)) return *t;
  } else if (auto t = parse_rfc3339(text)) {
    return *t;
  }
  return Timestamp{};
}

}  // namespace inkwire::controlplane
