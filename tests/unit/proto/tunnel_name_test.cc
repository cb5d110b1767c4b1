#include "proto/tunnel_name.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

using inkwire::proto::is_valid_tunnel_name;

TEST(TunnelName, LengthBoundaries) {
  EXPECT_FALSE(is_valid_tunnel_name(""));
  EXPECT_FALSE(is_valid_tunnel_name("a"));
  EXPECT_FALSE(is_valid_tunnel_name("ab"));
  EXPECT_TRUE(is_valid_tunnel_name("abc"));
  EXPECT_TRUE(is_valid_tunnel_name(std::string(63, 'a')));
  EXPECT_FALSE(is_valid_tunnel_name(std::string(64, 'a')));
}

TEST(TunnelName, Characters) {
  EXPECT_TRUE(is_valid_tunnel_name("my-agent-01"));
  EXPECT_TRUE(is_valid_tunnel_name("007"));
  EXPECT_FALSE(is_valid_tunnel_name("My-agent"));  // no normalisation at commit C
  EXPECT_FALSE(is_valid_tunnel_name("my_agent"));
  EXPECT_FALSE(is_valid_tunnel_name("my.agent"));
  EXPECT_FALSE(is_valid_tunnel_name("@my-agent"));
  EXPECT_FALSE(is_valid_tunnel_name("my agent"));
  EXPECT_FALSE(is_valid_tunnel_name("caf\xc3\xa9"));
}

TEST(TunnelName, Hyphens) {
  EXPECT_FALSE(is_valid_tunnel_name("-abc"));
  EXPECT_FALSE(is_valid_tunnel_name("abc-"));
  EXPECT_FALSE(is_valid_tunnel_name("a--b"));
  EXPECT_FALSE(is_valid_tunnel_name("xn--abc"));
  EXPECT_TRUE(is_valid_tunnel_name("a-b-c"));
}

// The rule must agree with PROTOCOL.md's regular expression on every short string over a small
// alphabet (exhaustive up to length 4, which covers every adjacency case).
TEST(TunnelName, AgreesWithSpecRegexExhaustively) {
  const std::regex spec("^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$|^[a-z0-9]$");
  const std::string alphabet = "a0-_A";
  std::string s;
  for (int len = 0; len <= 4; ++len) {
    std::size_t combos = 1;
    for (int i = 0; i < len; ++i) combos *= alphabet.size();
    for (std::size_t n = 0; n < combos; ++n) {
      s.clear();
      std::size_t k = n;
      for (int i = 0; i < len; ++i, k /= alphabet.size()) s.push_back(alphabet[k % alphabet.size()]);
      const bool expected = std::regex_match(s, spec) && s.size() >= 3 && s.size() <= 63;
      EXPECT_EQ(is_valid_tunnel_name(s), expected) << "'" << s << "'";
    }
  }
}
