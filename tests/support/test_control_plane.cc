#include "tests/support/test_control_plane.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <stdexcept>

#include "common/logging.h"
#include "controlplane/service/api_key_service.h"

namespace inkwire::testing {

using namespace inkwire::controlplane;

TestControlPlane::TestControlPlane(const std::function<void(Config&)>& adjust)
    : registry_(std::make_shared<prometheus::Registry>()) {
  ca_dir_ = (std::filesystem::temp_directory_path() / ("inkwire-test-ca-" + database_.name())).string();
  config_.database.url = database_.url();
  config_.database.pool_size = 4;
  config_.api.listen = "127.0.0.1:0";
  config_.api.threads = 2;
  config_.metrics.listen = "";
  config_.ca.dir = ca_dir_;
  config_.controlplane.reaper_interval_seconds = 3600;  // tests drive the reaper by hand
  if (adjust) adjust(config_);

  control_plane_ = std::make_unique<ControlPlane>(config_, clock_, random_, registry_,
                                                  make_logger("test", std::getenv("INKWIRE_TEST_LOG") ? "debug" : "warn"));
  if (auto ok = control_plane_->start(io_); !ok) throw std::runtime_error(ok.error());
  thread_ = std::thread([this] { io_.run(); });

  PgAccessRepository& access = control_plane_->access_repository();
  OrganizationRecord org;
  org.id = Uuid::random(random_);
  org.name = "acme";
  org.created_at = clock_.now();
  if (!access.create_organization(org)) throw std::runtime_error("cannot create test organisation");
  org_id_ = org.id.to_string();
  admin_key_ = create_key(org_id_, KeyScope::admin);
  member_key_ = create_key(org_id_, KeyScope::member);
  other_admin_key_ = create_org_with_admin_key("globex");
}

TestControlPlane::~TestControlPlane() {
  control_plane_->stop();
  control_plane_->close_all();
  thread_.join();
  control_plane_.reset();
  std::error_code ec;
  std::filesystem::remove_all(ca_dir_, ec);
}

std::string TestControlPlane::create_key(const std::string& org_id, KeyScope scope) {
  PgAccessRepository& access = control_plane_->access_repository();
  NewApiKey key = ApiKeyService::generate(*Uuid::parse(org_id), scope, "test", clock_.now(), random_);
  if (!access.insert_api_key(key.record, Actor{key.record.organization_id, std::nullopt, {}}))
    throw std::runtime_error("cannot create test API key");
  return key.api_key;
}

std::string TestControlPlane::create_org_with_admin_key(const std::string& name) {
  PgAccessRepository& access = control_plane_->access_repository();
  OrganizationRecord org;
  org.id = Uuid::random(random_);
  org.name = name;
  org.created_at = clock_.now();
  if (!access.create_organization(org)) throw std::runtime_error("cannot create organisation " + name);
  return create_key(org.id.to_string(), KeyScope::admin);
}

int TestControlPlane::run_reaper_once() {
  auto f = boost::asio::co_spawn(io_, control_plane_->reaper().run_once(), boost::asio::use_future);
  if (f.wait_for(std::chrono::seconds(30)) != std::future_status::ready) throw std::runtime_error("reaper hung");
  return f.get();
}

}  // namespace inkwire::testing
