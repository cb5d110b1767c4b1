#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/random_source.h"

namespace inkwire {

// A 128-bit UUID. Ids on the wire are always the canonical lowercase 8-4-4-4-12 form.
class Uuid {
 public:
  Uuid() = default;
  explicit Uuid(const std::array<std::uint8_t, 16>& bytes) : bytes_(bytes) {}

  // Accepts only the canonical 36-character hyphenated form (either case).
  static std::optional<Uuid> parse(std::string_view text);
  // Random (version 4) UUID.
  static Uuid random(RandomSource& random);

  std::string to_string() const;
  const std::array<std::uint8_t, 16>& bytes() const { return bytes_; }
  bool is_nil() const;

  friend bool operator==(const Uuid&, const Uuid&) = default;
  friend auto operator<=>(const Uuid&, const Uuid&) = default;

 private:
  std::array<std::uint8_t, 16> bytes_{};
};

struct UuidHash {
  std::size_t operator()(const Uuid& u) const noexcept;
};

}  // namespace inkwire
