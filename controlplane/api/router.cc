#include "controlplane/api/router.h"

namespace inkwire::controlplane {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  std::size_t start = 1;
  while (start <= path.size()) {
    const auto end = path.find('/', start);
    const auto stop = end == std::string_view::npos ? path.size() : end;
    out.push_back(path.substr(start, stop - start));
    start = stop + 1;
  }
  return out;
}

bool match_template(std::string_view tmpl, std::string_view path,
                    std::map<std::string, std::string, std::less<>>& params) {
  const auto t = split_path(tmpl);
  const auto p = split_path(path);
  if (t.size() != p.size()) return false;
  std::map<std::string, std::string, std::less<>> found;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i].size() > 2 && t[i].front() == '{' && t[i].back() == '}') {
      if (p[i].empty()) return false;
      found.emplace(std::string(t[i].substr(1, t[i].size() - 2)), std::string(p[i]));
    } else if (t[i] != p[i]) {
      return false;
    }
  }
  params = std::move(found);
  return true;
}

}  // namespace

void Router::add(boost::beast::http::verb method, std::string path_template, Handler handler) {
  routes_.push_back(Route{method, std::move(path_template), std::move(handler)});
}

void Router::add_static(std::string prefix, Handler handler) {
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  statics_.push_back(Route{boost::beast::http::verb::get, prefix + "/{asset}", std::move(handler)});
}

bool Router::match_static(boost::beast::http::verb method, std::string_view path, Match& m) const {
  for (const auto& s : statics_) {
    const std::string_view prefix = std::string_view(s.path_template).substr(0, s.path_template.size() - 8);
    if (!path.starts_with(prefix)) continue;
    std::string_view rest = path.substr(prefix.size());
    if (!rest.empty()) {
      if (rest.front() != '/') continue;  // "/administrator" is not under "/admin"
      rest.remove_prefix(1);
    }
    if (rest.find('/') != std::string_view::npos) continue;  // one segment only: no sub-folders
    if (method != s.method) {
      m.path_known = true;
      m.allowed = "GET";
      return false;
    }
    m.route = &s;
    m.params = {{"asset", std::string(rest)}};
    return true;
  }
  return false;
}

Router::Match Router::match(boost::beast::http::verb method, std::string_view path) const {
  Match m;
  if (path.empty() || path.front() != '/') return m;
  for (const auto& r : routes_) {
    std::map<std::string, std::string, std::less<>> params;
    if (!match_template(r.path_template, path, params)) continue;
    if (r.method == method) {
      m.route = &r;
      m.params = std::move(params);
      return m;
    }
    m.path_known = true;
    if (!m.allowed.empty()) m.allowed.append(", ");
    m.allowed.append(boost::beast::http::to_string(r.method));
  }
  if (!m.path_known) match_static(method, path, m);
  return m;
}

}  // namespace inkwire::controlplane
