#include "common/encoding.h"

#include <gtest/gtest.h>

#include "common/secret_hash.h"

using namespace inkwire;

TEST(Encoding, Base64RoundTripsRfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"}};
  for (auto [plain, enc] : vectors) {
    EXPECT_EQ(base64_encode(as_bytes(plain)), enc);
    auto dec = base64_decode(enc);
    ASSERT_TRUE(dec.has_value()) << enc;
    EXPECT_EQ(std::string(dec->begin(), dec->end()), plain);
  }
}

TEST(Encoding, Base64DecodeIsStrict) {
  EXPECT_FALSE(base64_decode("Zg").has_value());      // missing padding
  EXPECT_FALSE(base64_decode("Zg=").has_value());
  EXPECT_FALSE(base64_decode("Z===").has_value());
  EXPECT_FALSE(base64_decode("Zh==").has_value());    // non-canonical trailing bits
  EXPECT_FALSE(base64_decode("Zm9v\n").has_value());  // whitespace
  EXPECT_FALSE(base64_decode("Zg==Zg==").has_value()); // padding in the middle
  EXPECT_FALSE(base64_decode("Zm-_").has_value());    // url alphabet
}

TEST(Encoding, Base64UrlHasNoPadding) {
  const std::uint8_t bytes[] = {0xfb, 0xff, 0xfe};
  EXPECT_EQ(base64url_encode(bytes), "-__-");
  std::uint8_t thirty_two[32] = {};
  EXPECT_EQ(base64url_encode(thirty_two).size(), 43u);
}

TEST(Encoding, HexAndSha256) {
  EXPECT_EQ(hex_encode(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(SecretHash, ConstantTimeEqual) {
  auto a = sha256("x"), b = sha256("x"), c = sha256("y");
  EXPECT_TRUE(constant_time_equal(a, b));
  EXPECT_FALSE(constant_time_equal(a, c));
  EXPECT_FALSE(constant_time_equal(std::span<const std::uint8_t>(a).first(3), b));
}
