#pragma once
#include <string_view>
#include <vector>

#include "controlplane/api/router.h"

namespace inkwire::controlplane {

// One file of the admin dashboard (controlplane/admin/), embedded at build time.
struct AdminAsset {
  std::string_view name;   // "index.html", "app.js", …
  std::string_view bytes;
};

// Generated from controlplane/admin/ by cmake/EmbedAdminAssets.cmake.
const std::vector<AdminAsset>& embedded_admin_assets();

// "text/html; charset=utf-8" etc. by extension; "application/octet-stream" for anything else.
std::string_view admin_content_type(std::string_view name);

// The answer for GET /admin/NAME ("" is index.html): the embedded bytes with their type, no-cache
// (a new binary brings new assets) and a strict Content-Security-Policy; 404 for an unknown name.
// The page needs no API key: it holds no data, and every call it makes sends the user's key.
HttpResponse admin_asset_response(const HttpRequest& request, std::string_view name);

// Serves the dashboard at /admin/ on `router` (a static site, outside the API's routes).
void register_admin_routes(Router& router);

}  // namespace inkwire::controlplane
