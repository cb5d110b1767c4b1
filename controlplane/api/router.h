#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace inkwire::controlplane {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

struct RequestContext {
  const HttpRequest& request;
  std::map<std::string, std::string, std::less<>> params;  // {name} segments of the route
  std::string query;                                       // raw query string, without '?'
  std::string source_ip;
};

using Handler = std::function<boost::asio::awaitable<HttpResponse>(RequestContext&)>;

// Method + path-template routing ("/api/v1/tunnels/{id}/restore"). A trailing slash is optional
// on every route and never redirects (PROTOCOL.md §8 A32). Route templates label metrics, so
// label cardinality stays bounded whatever paths clients send.
class Router {
 public:
  struct Route {
    boost::beast::http::verb method;
    std::string path_template;
    Handler handler;
  };

  struct Match {
    const Route* route = nullptr;  // null: no route
    bool path_known = false;       // path matched some route with another method (405)
    std::string allowed;           // for 405: the methods that path takes ("GET, PATCH")
    std::map<std::string, std::string, std::less<>> params;
  };

  void add(boost::beast::http::verb method, std::string path_template, Handler handler);
  // A static site under `prefix` ("/admin"): GET prefix, prefix/ and prefix/NAME (one segment) go to
  // `handler` with params["asset"] = NAME ("" for the site's index). Kept apart from routes(), which
  // lists the API's operations (the ones the OpenAPI document describes); its metrics label is
  // "prefix/{asset}". Tried only when no route matches the path.
  void add_static(std::string prefix, Handler handler);
  Match match(boost::beast::http::verb method, std::string_view path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  bool match_static(boost::beast::http::verb method, std::string_view path, Match& m) const;

  std::vector<Route> routes_;
  std::vector<Route> statics_;  // path_template = prefix + "/{asset}"
};

}  // namespace inkwire::controlplane
