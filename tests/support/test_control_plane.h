#pragma once
#include <prometheus/registry.h>

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/config.h"
#include "common/random_source.h"
#include "controlplane/control_plane.h"
#include "tests/fakes/fake_clock.h"
#include "tests/support/http_client.h"
#include "tests/support/test_database.h"

namespace inkwire::testing {

// The controlplane role running in-process on 127.0.0.1 port 0 against its own fresh database, with
// a FakeClock, an organisation "acme" holding an admin key and a member key, and a second
// organisation "globex" with its own admin key. Stopped and cleaned up in the destructor.
class TestControlPlane {
 public:
  // `adjust` may change the configuration before the server starts (limits, grace window, ...).
  explicit TestControlPlane(const std::function<void(Config&)>& adjust = {});
  ~TestControlPlane();

  HttpClient client() const { return HttpClient(control_plane_->api_port()); }
  unsigned short port() const { return control_plane_->api_port(); }
  const Config& config() const { return config_; }
  FakeClock& clock() { return clock_; }
  const std::string& database_url() const { return database_.url(); }

  const std::string& admin_key() const { return admin_key_; }
  const std::string& member_key() const { return member_key_; }
  const std::string& other_org_admin_key() const { return other_admin_key_; }
  const std::string& org_id() const { return org_id_; }

  // Creates another organisation; returns an admin key for it.
  std::string create_org_with_admin_key(const std::string& name);
  // Runs one reaper pass on the server's io_context and waits for it; returns how many it finalised.
  int run_reaper_once();
  prometheus::Registry& registry() { return *registry_; }
  controlplane::ControlPlane& control_plane() { return *control_plane_; }

 private:
  std::string create_key(const std::string& org_id, controlplane::KeyScope scope);

  TestDatabase database_;
  Config config_;
  FakeClock clock_;
  SecureRandom random_;
  std::shared_ptr<prometheus::Registry> registry_;
  boost::asio::io_context io_;
  std::unique_ptr<controlplane::ControlPlane> control_plane_;
  std::thread thread_;
  std::string org_id_, admin_key_, member_key_, other_admin_key_;
  std::string ca_dir_;
};

}  // namespace inkwire::testing
