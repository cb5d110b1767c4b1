#include "inkwired/admin_commands.h"

#include <fcntl.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "common/logging.h"
#include "common/random_source.h"
#include "common/time_format.h"
#include "controlplane/ca/certificate_authority.h"
#include "controlplane/repo/pg/migrator.h"
#include "controlplane/repo/pg/pg_access_repository.h"
#include "controlplane/service/api_key_service.h"

namespace inkwire {

using namespace inkwire::controlplane;

namespace {

int fail(const std::string& message) {
  std::cerr << "inkwired: " << message << "\n";
  return 1;
}

// What a one-shot command needs: a one-connection pool and the access repository.
struct Database {
  explicit Database(const Config& config)
      // Failures reach the operator as the command's own one-line error, not as log lines too.
      : logger(make_logger("inkwired", "off")),
        pool(config.database.url, 1, config.database.statement_timeout_ms, registry, logger),
        access(pool) {}
  prometheus::Registry registry;
  Logger logger;
  PgPool pool;
  PgAccessRepository access;
};

std::optional<OrganizationRecord> find_org(Database& db, const std::string& org, std::string& error) {
  auto found = db.access.find_organization(org);
  if (!found) {
    error = "database error: " + found.error().message;
    return std::nullopt;
  }
  if (!*found) error = "organization '" + org + "' not found";
  return *found;
}

// Writes `text` to `path` with `mode`, replacing the file atomically (temp file, then rename).
bool write_file(const std::string& path, const std::string& text, mode_t mode, std::string& error) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    error = "cannot create " + tmp + ": " + std::strerror(errno);
    return false;
  }
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "cannot write " + path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace

int run_migrate(const Config& config) {
  Database db(config);
  Migrator migrator(embedded_migrations());
  auto r = db.pool.run_blocking([&](pqxx::connection& c) { return migrator.migrate(c); });
  if (!r) return fail("cannot reach the database (" + mask_database_url(config.database.url) + "): " + r.error().message);
  if (!*r) return fail(r->error());
  if (r->value().empty()) {
    std::cout << "schema is up to date (version " << migrator.latest_version() << ")\n";
  } else {
    for (const auto& name : r->value()) std::cout << "applied " << name << "\n";
  }
  return 0;
}

int run_create_org(const Config& config, const std::string& name, bool if_missing) {
  if (name.empty() || name.size() > 200) return fail("organization name must be 1 to 200 characters");
  Database db(config);
  std::string error;
  if (auto existing = find_org(db, name, error)) {
    if (!if_missing) return fail("organization '" + name + "' already exists (" + existing->id.to_string() + ")");
    std::cout << existing->id.to_string() << "\n";
    return 0;
  }
  if (error.starts_with("database error")) return fail(error);
  SecureRandom random;
  SystemClock clock;
  OrganizationRecord org;
  org.id = Uuid::random(random);
  org.name = name;
  org.created_at = clock.now();
  auto created = db.access.create_organization(org);
  if (!created) return fail("cannot create organization: " + created.error().message);
  std::cout << created->id.to_string() << "\n";
  return 0;
}

int run_set_org(const Config& config, const std::string& org_name, std::optional<bool> disabled,
                std::optional<std::string> limit_text) {
  std::optional<std::optional<int>> limit;
  if (limit_text) {
    if (*limit_text == "default") {
      limit = std::optional<int>{};
    } else {
      try {
        std::size_t used = 0;
        const int n = std::stoi(*limit_text, &used);
        if (used != limit_text->size() || n < 0) throw std::invalid_argument("");
        limit = n;
      } catch (...) {
        return fail("--daily-create-limit must be a non-negative integer or 'default'");
      }
    }
  }
  if (!disabled && !limit) return fail("nothing to change: give --disabled and/or --daily-create-limit");
  Database db(config);
  std::string error;
  auto org = find_org(db, org_name, error);
  if (!org) return fail(error);
  auto r = db.access.update_organization(org->id, disabled, limit);
  if (!r) return fail("cannot update organization: " + r.error().message);
  // Cached keys of a disabled organisation keep working until controlplane.api_key_cache_seconds pass.
  std::cout << "updated " << org->name << " (" << org->id.to_string() << ")\n";
  return 0;
}

int run_create_api_key(const Config& config, const std::string& org_name, const std::string& scope_text,
                       std::optional<std::string> description) {
  auto scope = parse_key_scope(scope_text);
  if (!scope) return fail("--scope must be admin or member");
  Database db(config);
  std::string error;
  auto org = find_org(db, org_name, error);
  if (!org) return fail(error);
  SecureRandom random;
  SystemClock clock;
  NewApiKey key = ApiKeyService::generate(org->id, *scope, std::move(description), clock.now(), random);
  auto ok = db.access.insert_api_key(key.record, Actor{org->id, std::nullopt, {}});
  if (!ok) return fail("cannot create API key: " + ok.error().message);
  std::cout << key.api_key << "\n";  // the only time it is shown
  return 0;
}

int run_list_api_keys(const Config& config, const std::string& org_name) {
  Database db(config);
  std::string error;
  auto org = find_org(db, org_name, error);
  if (!org) return fail(error);
  auto keys = db.access.list_api_keys_blocking(org->id);
  if (!keys) return fail("cannot list API keys: " + keys.error().message);
  std::printf("%-43s  %-6s  %-27s  %-27s  %s\n", "KEY PREFIX", "SCOPE", "CREATED", "REVOKED", "DESCRIPTION");
  for (const auto& k : *keys) {
    std::printf("%-43s  %-6s  %-27s  %-27s  %s\n", ApiKeyService::display_prefix(k.id).c_str(),
                std::string(to_string(k.scope)).c_str(), format_rfc3339(k.created_at).c_str(),
                k.revoked_at ? format_rfc3339(*k.revoked_at).c_str() : "-", k.description.value_or("").c_str());
  }
  return 0;
}

int run_revoke_api_key(const Config& config, const std::string& key_text) {
  std::string_view text = key_text;
  if (text.starts_with("ApiKey_")) text.remove_prefix(7);
  auto id = Uuid::parse(text.substr(0, 36));
  if (!id) return fail("--id must be a key id (UUID) or its ApiKey_<uuid> prefix");
  Database db(config);
  SystemClock clock;
  auto r = db.access.revoke_api_key_blocking(*id, std::nullopt, Actor{}, clock.now());
  if (!r) return fail("cannot revoke API key: " + r.error().message);
  if (!*r) return fail("no live API key with id " + id->to_string());
  std::cout << "revoked " << id->to_string() << "\n";
  return 0;
}

int run_issue_server_cert(const Config& config, const std::string& cert_out, const std::string& key_out,
                          const std::vector<std::string>& dns, const std::vector<std::string>& ips, int days) {
  if (dns.empty() && ips.empty()) return fail("give at least one --dns or --ip");
  SystemClock clock;
  auto ca = CertificateAuthority::open(config.ca, clock);
  if (!ca) return fail(ca.error());
  auto issued = (*ca)->issue_server_certificate(dns, ips, days);
  if (!issued) return fail(issued.error());
  std::string error;
  // The chain file holds the leaf then the CA, as TLS servers send it.
  if (!write_file(key_out, issued->key_pem, 0600, error)) return fail(error);
  if (!write_file(cert_out, issued->cert_pem + (*ca)->ca_pem(), 0644, error)) return fail(error);
  std::cout << "wrote " << cert_out << " and " << key_out << "\n";
  return 0;
}

}  // namespace inkwire
