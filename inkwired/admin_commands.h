#pragma once
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"

namespace inkwire {

// One-shot commands against the database and the CA. Each returns the process exit code and prints
// its result on stdout (keys exactly once) or one line on stderr.
int run_migrate(const Config& config);
int run_create_org(const Config& config, const std::string& name, bool if_missing);
// Disables/enables an organisation (its keys then get 403) and/or sets its daily creation limit
// ("default" returns to controlplane.daily_create_limit).
int run_set_org(const Config& config, const std::string& org, std::optional<bool> disabled,
                std::optional<std::string> daily_create_limit);
int run_create_api_key(const Config& config, const std::string& org, const std::string& scope,
                       std::optional<std::string> description);
int run_list_api_keys(const Config& config, const std::string& org);
int run_revoke_api_key(const Config& config, const std::string& key_id);
int run_issue_server_cert(const Config& config, const std::string& cert_out, const std::string& key_out,
                          const std::vector<std::string>& dns, const std::vector<std::string>& ips, int days);

}  // namespace inkwire
