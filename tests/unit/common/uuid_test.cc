#include "common/uuid.h"

#include <gtest/gtest.h>

#include <set>

using namespace inkwire;

TEST(Uuid, ParsesCanonicalFormOnly) {
  auto u = Uuid::parse("67e166e4-eebf-4e2f-9ad1-31500426dbc9");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->to_string(), "67e166e4-eebf-4e2f-9ad1-31500426dbc9");
  EXPECT_EQ(Uuid::parse("67E166E4-EEBF-4E2F-9AD1-31500426DBC9")->to_string(), "67e166e4-eebf-4e2f-9ad1-31500426dbc9");
  EXPECT_FALSE(Uuid::parse("67e166e4eebf4e2f9ad131500426dbc9").has_value());
  EXPECT_FALSE(Uuid::parse("{67e166e4-eebf-4e2f-9ad1-31500426dbc9}").has_value());
  EXPECT_FALSE(Uuid::parse("67e166e4-eebf-4e2f-9ad1-31500426dbcg").has_value());
  EXPECT_FALSE(Uuid::parse("67e166e4-eebf-4e2f-9ad1-31500426dbc").has_value());
  EXPECT_FALSE(Uuid::parse("67e166e4-eebf+4e2f-9ad1-31500426dbc9").has_value());
  EXPECT_FALSE(Uuid::parse("").has_value());
}

TEST(Uuid, RandomIsVersion4AndDistinct) {
  SecureRandom rng;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto s = Uuid::random(rng).to_string();
    EXPECT_EQ(s[14], '4');
    EXPECT_TRUE(s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b');
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 1000u);
}
