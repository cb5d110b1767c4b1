#include "common/time_format.h"

#include <gtest/gtest.h>

using namespace inkwire;

TEST(TimeFormat, FormatsUtcWithMicroseconds) {
  EXPECT_EQ(format_rfc3339(from_unix_micros(0)), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_rfc3339(from_unix_micros(1778241600123456)), "2026-05-08T12:00:00.123456Z");
}

TEST(TimeFormat, ParsesVariantsAndRoundTrips) {
  auto t = parse_rfc3339("2026-05-08T12:00:00.123456+00:00");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(to_unix_micros(*t), 1778241600123456);
  EXPECT_EQ(to_unix_micros(*parse_rfc3339("2026-05-08T14:00:00+02:00")), 1778241600000000);
  EXPECT_EQ(to_unix_micros(*parse_rfc3339("2026-05-08T12:00:00.1Z")), 1778241600100000);
  EXPECT_EQ(*parse_rfc3339(format_rfc3339(*t)), *t);
  EXPECT_FALSE(parse_rfc3339("2026-05-08").has_value());
  EXPECT_FALSE(parse_rfc3339("2026-13-08T12:00:00Z").has_value());
  EXPECT_FALSE(parse_rfc3339("2026-05-08T12:00:00").has_value());
  EXPECT_FALSE(parse_rfc3339("2026-05-08T12:00:00Zjunk").has_value());
}
