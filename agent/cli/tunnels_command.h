#pragma once
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace CLI {
class App;
class ParseError;
}  // namespace CLI

namespace inkwire::agent::cli {

// The `inkwire` exit codes (agent/README.md). Every failure is also one line on stderr.
enum ExitCode : int {
  kExitOk = 0,
  kExitApiError = 1,   // the API answered with an error (4xx/5xx), a tunnel name was not found,
                       // or the answer broke the contract
  kExitUsage = 2,      // bad arguments, missing API URL or key, bad URL, unreadable CA file
  kExitTransport = 3,  // the API could not be reached: resolve, connect, TLS (verification), timeout
  kExitLocalState = 4, // a local file: state directory, key, CSR or output file
};

// Looks up an environment variable (injected so tests do not depend on the process environment).
using EnvironmentLookup = std::function<std::optional<std::string>(std::string_view name)>;
EnvironmentLookup process_environment_lookup();

struct TunnelsCommandIo {
  std::ostream* out = nullptr;  // null: std::cout
  std::ostream* err = nullptr;  // null: std::cerr
  EnvironmentLookup env;        // empty: the process environment
};

// Adds `tunnels list|get|create|update|delete|restore|force-delete|rotate-secret|sign-csr` to
// `app`. Each runs when app.parse() reaches it and stores its exit code in `exit_code`, which
// must outlive the parse. Human output by default (a table for list, "key: value" lines
// otherwise); `--json` prints the API's JSON. Configuration: --api-url, --api-key, --ca-file,
// then INKWIRE_API_URL, INKWIRE_API_KEY, INKWIRE_CA_FILE.
void add_tunnels_command(CLI::App& app, int& exit_code, TunnelsCommandIo io = {});

// For main(): prints CLI11's message (help goes to stdout) and returns kExitOk for --help,
// kExitUsage for every parse error.
int handle_parse_error(CLI::App& app, const CLI::ParseError& error);

}  // namespace inkwire::agent::cli
