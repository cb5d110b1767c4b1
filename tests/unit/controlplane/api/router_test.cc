#include "controlplane/api/router.h"

#include <gtest/gtest.h>

using namespace inkwire::controlplane;
using boost::beast::http::verb;

namespace {
Handler noop() {
  return [](RequestContext&) -> boost::asio::awaitable<HttpResponse> { co_return HttpResponse{}; };
}
}  // namespace

TEST(Router, MatchesTemplatesWithOptionalTrailingSlash) {
  Router r;
  r.add(verb::get, "/api/v1/tunnels", noop());
  r.add(verb::get, "/api/v1/tunnels/{id}", noop());
  r.add(verb::post, "/api/v1/tunnels/{id}/restore", noop());
  EXPECT_EQ(r.match(verb::get, "/api/v1/tunnels").route->path_template, "/api/v1/tunnels");
  EXPECT_EQ(r.match(verb::get, "/api/v1/tunnels/").route->path_template, "/api/v1/tunnels");
  auto m = r.match(verb::get, "/api/v1/tunnels/abc");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.params.at("id"), "abc");
  EXPECT_EQ(r.match(verb::post, "/api/v1/tunnels/abc/restore/").params.at("id"), "abc");
}

TEST(Router, TellsUnknownPathsFromWrongMethods) {
  Router r;
  r.add(verb::get, "/api/v1/tunnels/{id}", noop());
  auto wrong_method = r.match(verb::put, "/api/v1/tunnels/x");
  EXPECT_EQ(wrong_method.route, nullptr);
  EXPECT_TRUE(wrong_method.path_known);
  auto unknown = r.match(verb::get, "/api/v1/nothing");
  EXPECT_EQ(unknown.route, nullptr);
  EXPECT_FALSE(unknown.path_known);
  EXPECT_EQ(r.match(verb::get, "/api/v1/tunnels//").route, nullptr);  // empty id segment
  EXPECT_EQ(r.match(verb::get, "api/v1/tunnels/x").route, nullptr);
  EXPECT_EQ(r.match(verb::get, "").route, nullptr);
}
