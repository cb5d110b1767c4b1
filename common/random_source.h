#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

namespace inkwire {

// Source of randomness for secrets, tokens and ids; passed in so tests can make it predictable.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual void fill(std::span<std::uint8_t> out) = 0;
};

// OpenSSL's CSPRNG (RAND_bytes). Thread-safe.
class SecureRandom final : public RandomSource {
 public:
  void fill(std::span<std::uint8_t> out) override;
};

}  // namespace inkwire
