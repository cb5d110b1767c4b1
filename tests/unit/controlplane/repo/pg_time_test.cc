#include "controlplane/repo/pg/pg_time.h"

#include <gtest/gtest.h>

#include "common/time_format.h"

using namespace inkwire;
using inkwire::controlplane::parse_pg_timestamptz;

TEST(PgTime, ParsesPostgresIsoOutput) {
  EXPECT_EQ(to_unix_micros(parse_pg_timestamptz("2026-05-08 12:00:00.123456+00")), 1778241600123456);
  EXPECT_EQ(to_unix_micros(parse_pg_timestamptz("2026-05-08 12:00:00.1+00")), 1778241600100000);
  EXPECT_EQ(to_unix_micros(parse_pg_timestamptz("2026-05-08 12:00:00+00")), 1778241600000000);
  EXPECT_EQ(to_unix_micros(parse_pg_timestamptz("2026-05-08 14:00:00+02")), 1778241600000000);
  EXPECT_EQ(to_unix_micros(parse_pg_timestamptz("2026-05-08 12:00:00+00:00")), 1778241600000000);
  EXPECT_EQ(to_unix_micros(parse_pg_timestamptz("infinity")), 0);
}
