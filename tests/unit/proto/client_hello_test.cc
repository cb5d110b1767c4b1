#include "proto/client_hello.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using inkwire::proto::ClientHelloResult;
using inkwire::proto::ClientHelloStatus;
using inkwire::proto::parse_client_hello;
using Bytes = std::vector<std::uint8_t>;

namespace {

// A real ClientHello, as OpenSSL's client writes it into a memory BIO on its first handshake step.
Bytes openssl_hello(int max_version, const char* sni, std::initializer_list<std::string_view> alpn) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_max_proto_version(ctx, max_version);
  SSL* ssl = SSL_new(ctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_set_connect_state(ssl);
  if (sni != nullptr) SSL_set_tlsext_host_name(ssl, sni);
  std::string wire;
  for (const auto p : alpn) wire += static_cast<char>(p.size()) + std::string(p);
  if (!wire.empty()) {
    EXPECT_EQ(SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()),
                                  static_cast<unsigned>(wire.size())), 0);  // 0 is success here
  }
  EXPECT_EQ(SSL_do_handshake(ssl), -1);  // waits for the ServerHello
  char* data = nullptr;
  const long n = BIO_get_mem_data(out, &data);
  Bytes hello(data, data + n);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return hello;
}

void put16(Bytes& b, std::size_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}

Bytes bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

// Handshake bytes (type, 24-bit length, body) framed into records whose payloads have these sizes;
// the last record takes whatever is left.
Bytes reframe(const Bytes& handshake, std::initializer_list<std::size_t> sizes) {
  Bytes out;
  std::size_t at = 0;
  auto record = [&](std::size_t n) {
    out.insert(out.end(), {22, 3, 1});
    put16(out, n);
    out.insert(out.end(), handshake.begin() + static_cast<std::ptrdiff_t>(at),
               handshake.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
  };
  for (const std::size_t n : sizes) record(n);
  if (at < handshake.size()) record(handshake.size() - at);
  return out;
}

Bytes handshake_of(const Bytes& records) {  // assumes one record
  return Bytes(records.begin() + 5, records.end());
}

Bytes extension(std::uint16_t type, const Bytes& data) {
  Bytes e;
  put16(e, type);
  put16(e, data.size());
  e.insert(e.end(), data.begin(), data.end());
  return e;
}

Bytes sni_extension(std::initializer_list<std::string_view> names) {
  Bytes list;
  for (const auto n : names) {
    list.push_back(0);
    put16(list, n.size());
    list.insert(list.end(), n.begin(), n.end());
  }
  Bytes data;
  put16(data, list.size());
  data.insert(data.end(), list.begin(), list.end());
  return extension(0, data);
}

Bytes alpn_extension(std::initializer_list<std::string_view> names) {
  Bytes list;
  for (const auto n : names) {
    list.push_back(static_cast<std::uint8_t>(n.size()));
    list.insert(list.end(), n.begin(), n.end());
  }
  Bytes data;
  put16(data, list.size());
  data.insert(data.end(), list.begin(), list.end());
  return extension(16, data);
}

// A minimal hand-built ClientHello record: session id of 32, two cipher suites, null compression.
// Offsets inside the record, for the tests that break one length at a time.
constexpr std::size_t kHandshakeLengthAt = 6;
constexpr std::size_t kSessionIdLengthAt = 5 + 4 + 2 + 32;
constexpr std::size_t kCipherLengthAt = kSessionIdLengthAt + 1 + 32;
constexpr std::size_t kCompressionLengthAt = kCipherLengthAt + 2 + 4;
constexpr std::size_t kExtensionsLengthAt = kCompressionLengthAt + 2;
constexpr std::size_t kFirstExtensionAt = kExtensionsLengthAt + 2;

Bytes built_hello(const Bytes& extensions, bool with_extensions_block = true) {
  Bytes body{3, 3};
  body.insert(body.end(), 32, 0xAB);  // random
  body.push_back(32);
  body.insert(body.end(), 32, 0xCD);  // session id
  body.insert(body.end(), {0, 4, 0x13, 0x01, 0xC0, 0x2F});
  body.insert(body.end(), {1, 0});
  if (with_extensions_block) {
    put16(body, extensions.size());
    body.insert(body.end(), extensions.begin(), extensions.end());
  }
  Bytes hs{1, 0};
  put16(hs, body.size());
  hs.insert(hs.end(), body.begin(), body.end());
  return reframe(hs, {});
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

ClientHelloResult parse(const Bytes& b, std::size_t max = 16384) { return parse_client_hello(b, max); }

// Every proper prefix is need_more (with a bytes_needed beyond it and within the bound), the whole
// input is complete, and extra bytes after it change nothing.
ClientHelloResult parse_every_prefix(const Bytes& hello) {
  for (std::size_t n = 0; n < hello.size(); ++n) {
    const auto r = parse_client_hello(std::span(hello).first(n));
    EXPECT_EQ(r.status, ClientHelloStatus::need_more) << "prefix " << n << " of " << hello.size();
    EXPECT_GT(r.bytes_needed, n);
    EXPECT_LE(r.bytes_needed, hello.size());
    if (r.status != ClientHelloStatus::need_more) break;
  }
  const auto whole = parse(hello);
  Bytes longer = hello;
  longer.insert(longer.end(), {23, 3, 3, 0, 1, 0});  // whatever the client sends next
  const auto again = parse(longer);
  EXPECT_EQ(again.status, whole.status);
  EXPECT_EQ(again.info.sni, whole.info.sni);
  return whole;
}

TEST(ClientHello, OpenSslTls13WithSniAndAlpn) {
  const Bytes hello = openssl_hello(TLS1_3_VERSION, "shop.tunnels.example", {"h2", "http/1.1"});
  const auto r = parse_every_prefix(hello);
  ASSERT_EQ(r.status, ClientHelloStatus::complete);
  EXPECT_EQ(r.info.sni, "shop.tunnels.example");
  EXPECT_EQ(r.info.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(r.info.legacy_version, 0x0303);
  EXPECT_TRUE(r.info.has_supported_versions);
}

TEST(ClientHello, OpenSslTls12MaxWithSniAndAlpn) {
  const Bytes hello = openssl_hello(TLS1_2_VERSION, "a.example", {"http/1.1"});
  const auto r = parse_every_prefix(hello);
  ASSERT_EQ(r.status, ClientHelloStatus::complete);
  EXPECT_EQ(r.info.sni, "a.example");
  EXPECT_EQ(r.info.alpn, (std::vector<std::string>{"http/1.1"}));
  EXPECT_EQ(r.info.legacy_version, 0x0303);
  EXPECT_FALSE(r.info.has_supported_versions);
}

TEST(ClientHello, OpenSslWithoutSniOrAlpn) {
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    const auto r = parse_every_prefix(openssl_hello(version, nullptr, {}));
    ASSERT_EQ(r.status, ClientHelloStatus::complete);
    EXPECT_FALSE(r.info.sni.has_value());  // routed to the relay (§8 A31)
    EXPECT_TRUE(r.info.alpn.empty());
  }
}

TEST(ClientHello, SplitAcrossRecords) {
  const Bytes hs = handshake_of(openssl_hello(TLS1_3_VERSION, "split.example", {"h2"}));
  // The handshake header itself split, a cut inside the SNI, and one byte per record for a while.
  for (const auto& framed : {reframe(hs, {2}), reframe(hs, {hs.size() / 2}), reframe(hs, {1, 1, 1, 1, 1, 100, 3})}) {
    const auto r = parse_every_prefix(framed);
    ASSERT_EQ(r.status, ClientHelloStatus::complete);
    EXPECT_EQ(r.info.sni, "split.example");
    EXPECT_EQ(r.info.alpn, (std::vector<std::string>{"h2"}));
  }
}

TEST(ClientHello, UppercaseSniIsLowercasedAndTrailingDotStripped) {
  auto r = parse(openssl_hello(TLS1_3_VERSION, "Shop.Tunnels.EXAMPLE", {}));
  ASSERT_EQ(r.status, ClientHelloStatus::complete);
  EXPECT_EQ(r.info.sni, "shop.tunnels.example");
  r = parse(openssl_hello(TLS1_3_VERSION, "shop.example.", {}));
  ASSERT_EQ(r.status, ClientHelloStatus::complete);
  EXPECT_EQ(r.info.sni, "shop.example");
  r = parse(built_hello(sni_extension({"_acme.x-y.example"})));
  ASSERT_EQ(r.status, ClientHelloStatus::complete);
  EXPECT_EQ(r.info.sni, "_acme.x-y.example");
}

TEST(ClientHello, HandBuiltHelloWithAndWithoutExtensions) {
  auto r = parse_every_prefix(built_hello({}, false));
  ASSERT_EQ(r.status, ClientHelloStatus::complete);
  EXPECT_FALSE(r.info.sni);
  r = parse_every_prefix(built_hello(concat({extension(0xFF01, {0}), sni_extension({"x.example"}),
                                             alpn_extension({"h2"}), extension(43, {2, 3, 4})})));
  ASSERT_EQ(r.status, ClientHelloStatus::complete);
  EXPECT_EQ(r.info.sni, "x.example");
  EXPECT_TRUE(r.info.has_supported_versions);
}

TEST(ClientHello, NotTlsIsKnownFromTheFirstByte) {
  EXPECT_EQ(parse(bytes_of("GET / HTTP/1.1\r\n")).status, ClientHelloStatus::not_tls);
  EXPECT_EQ(parse(bytes_of("G")).status, ClientHelloStatus::not_tls);
  EXPECT_EQ(parse(Bytes{0x80, 0x2e, 0x01}).status, ClientHelloStatus::not_tls);  // SSLv2-style hello
  const auto empty = parse({});
  EXPECT_EQ(empty.status, ClientHelloStatus::need_more);
  EXPECT_GE(empty.bytes_needed, 5u);
  // A bound too small for any hello: nothing arrived yet, so still need_more, within the bound.
  const auto tiny = parse_client_hello({}, 3);
  EXPECT_EQ(tiny.status, ClientHelloStatus::need_more);
  EXPECT_EQ(tiny.bytes_needed, 3u);
  EXPECT_EQ(parse_client_hello(Bytes{22}, 3).status, ClientHelloStatus::too_large);
  EXPECT_EQ(parse_client_hello(Bytes{'G'}, 3).status, ClientHelloStatus::not_tls);
}

TEST(ClientHello, MalformedRecordLayer) {
  const Bytes good = built_hello(sni_extension({"x.example"}));
  auto with = [&](std::size_t at, std::uint8_t v) {
    Bytes b = good;
    b[at] = v;
    return parse(b).status;
  };
  EXPECT_EQ(with(1, 2), ClientHelloStatus::malformed);  // record version 2.x
  EXPECT_EQ(with(2, 0), ClientHelloStatus::malformed);  // SSL 3.0
  EXPECT_EQ(with(2, 5), ClientHelloStatus::malformed);
  EXPECT_EQ(with(5, 2), ClientHelloStatus::malformed);  // ServerHello, not ClientHello
  // A zero-length record, an oversized one, and an alert interleaved with the handshake fragments.
  EXPECT_EQ(parse(Bytes{22, 3, 1, 0, 0}).status, ClientHelloStatus::malformed);
  EXPECT_EQ(parse(Bytes{22, 3, 1, 0x40, 0x01}).status, ClientHelloStatus::malformed);
  Bytes two = reframe(handshake_of(good), {10});
  two[5 + 10] = 21;
  EXPECT_EQ(parse(two).status, ClientHelloStatus::malformed);
}

TEST(ClientHello, MalformedLengthsAtEveryLevel) {
  const Bytes good = built_hello(sni_extension({"x.example"}));
  ASSERT_EQ(parse(good).status, ClientHelloStatus::complete);
  auto with = [&](std::size_t at, std::initializer_list<std::uint8_t> v) {
    Bytes b = good;
    std::copy(v.begin(), v.end(), b.begin() + static_cast<std::ptrdiff_t>(at));
    return parse(b).status;
  };
  EXPECT_EQ(with(kHandshakeLengthAt, {0, 20}), ClientHelloStatus::malformed);   // shorter than its fields
  EXPECT_EQ(with(kHandshakeLengthAt + 1, {static_cast<std::uint8_t>(good[kHandshakeLengthAt + 1] + 1)}),
            ClientHelloStatus::malformed);                                      // extensions stop short of the end
  EXPECT_EQ(with(kSessionIdLengthAt, {33}), ClientHelloStatus::malformed);
  EXPECT_EQ(with(kCipherLengthAt, {0, 3}), ClientHelloStatus::malformed);       // odd
  EXPECT_EQ(with(kCipherLengthAt, {0, 0}), ClientHelloStatus::malformed);       // empty
  EXPECT_EQ(with(kCipherLengthAt, {0xFF, 0xFE}), ClientHelloStatus::malformed); // past the hello
  EXPECT_EQ(with(kCompressionLengthAt, {0}), ClientHelloStatus::malformed);
  EXPECT_EQ(with(kExtensionsLengthAt, {0, 1}), ClientHelloStatus::malformed);
  EXPECT_EQ(with(kExtensionsLengthAt, {0xFF, 0}), ClientHelloStatus::malformed);
  EXPECT_EQ(with(kFirstExtensionAt + 2, {0, 0xFF}), ClientHelloStatus::malformed);  // extension past the end
  EXPECT_EQ(with(kFirstExtensionAt + 4, {0, 1}), ClientHelloStatus::malformed);     // server_name list short
  EXPECT_EQ(with(kFirstExtensionAt + 7, {0, 1}), ClientHelloStatus::malformed);     // host_name shorter than its entry
  EXPECT_EQ(with(kFirstExtensionAt + 7, {0, 0x20}), ClientHelloStatus::malformed);  // host_name past its list
  EXPECT_EQ(with(kFirstExtensionAt + 6, {1}), ClientHelloStatus::malformed);        // unknown name type
}

TEST(ClientHello, MalformedExtensions) {
  auto status = [](const Bytes& ext) { return parse(built_hello(ext)).status; };
  EXPECT_EQ(status(sni_extension({"a.example", "b.example"})), ClientHelloStatus::malformed);
  EXPECT_EQ(status(concat({sni_extension({"a.example"}), sni_extension({"a.example"})})),
            ClientHelloStatus::malformed);
  EXPECT_EQ(status(sni_extension({""})), ClientHelloStatus::malformed);
  EXPECT_EQ(status(sni_extension({"."})), ClientHelloStatus::malformed);
  EXPECT_EQ(status(sni_extension({"a..example"})), ClientHelloStatus::malformed);
  EXPECT_EQ(status(sni_extension({"bad name.example"})), ClientHelloStatus::malformed);
  EXPECT_EQ(status(sni_extension({"b\xC3\xA4" "d.example"})), ClientHelloStatus::malformed);
  EXPECT_EQ(status(sni_extension({std::string_view("a\0b.example", 11)})), ClientHelloStatus::malformed);
  EXPECT_EQ(status(sni_extension({"192.168.1.10"})), ClientHelloStatus::malformed);  // RFC 6066: no IP literals
  EXPECT_EQ(status(sni_extension({"[::1]"})), ClientHelloStatus::malformed);
  EXPECT_EQ(status(sni_extension({std::string(64, 'a') + ".example"})), ClientHelloStatus::malformed);
  EXPECT_EQ(status(extension(0, {})), ClientHelloStatus::malformed);  // the server's empty form
  EXPECT_EQ(status(alpn_extension({"h2", ""})), ClientHelloStatus::malformed);
  EXPECT_EQ(status(extension(16, {0, 0})), ClientHelloStatus::malformed);
  EXPECT_EQ(status(extension(16, {0, 3, 2, 'h', '2', 0})), ClientHelloStatus::malformed);  // list past its extension
  EXPECT_EQ(status(extension(16, {0, 3, 5, 'h', '2'})), ClientHelloStatus::malformed);     // name past its list
  EXPECT_EQ(status(extension(43, {3, 3, 4, 3})), ClientHelloStatus::malformed);
  EXPECT_EQ(status(extension(43, {0})), ClientHelloStatus::malformed);
  EXPECT_EQ(status(extension(43, {2, 3, 4, 0})), ClientHelloStatus::malformed);  // bytes after the list
}

TEST(ClientHello, TruncatedIsNeedMoreNeverMalformed) {
  const Bytes good = built_hello(concat({sni_extension({"x.example"}), alpn_extension({"h2"})}));
  parse_every_prefix(good);
  parse_every_prefix(reframe(handshake_of(good), {7, 1, 30}));
}

TEST(ClientHello, TooLarge) {
  // A big padding extension (RFC 7685) pushes the hello over the bound: known from the handshake
  // length, before the bytes arrive.
  const Bytes big = built_hello(concat({sni_extension({"x.example"}), extension(21, Bytes(20000, 0))}));
  Bytes framed = reframe(handshake_of(big), {16000});
  EXPECT_EQ(parse(framed).status, ClientHelloStatus::too_large);
  EXPECT_EQ(parse(Bytes(framed.begin(), framed.begin() + 9)).status, ClientHelloStatus::too_large);
  EXPECT_EQ(parse(framed, 1u << 16).status, ClientHelloStatus::complete);
  // Small bound, small hello: the bound includes the record headers.
  const Bytes hello = built_hello(sni_extension({"x.example"}));
  EXPECT_EQ(parse(hello, hello.size()).status, ClientHelloStatus::complete);
  EXPECT_EQ(parse(hello, hello.size() - 1).status, ClientHelloStatus::too_large);
  EXPECT_EQ(parse(reframe(handshake_of(hello), {10}), hello.size()).status, ClientHelloStatus::too_large);
}

TEST(ClientHello, StatusNames) {
  EXPECT_EQ(inkwire::proto::to_string(ClientHelloStatus::not_tls), "not_tls");
  EXPECT_EQ(inkwire::proto::to_string(ClientHelloStatus::too_large), "too_large");
}

}  // namespace
