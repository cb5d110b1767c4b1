// Runs a libFuzzer target over its committed corpus as a plain test (any compiler, no libFuzzer):
// every input that once mattered keeps being checked by scripts/test.
//   <target>_regression DIR...   -> feeds every regular file below each DIR once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  std::size_t inputs = 0;
  for (int i = 1; i < argc; ++i) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(argv[i])) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      ++inputs;
    }
  }
  std::printf("%zu corpus inputs passed\n", inputs);
  return inputs > 0 ? 0 : 1;  // an empty corpus is a setup mistake, not a pass
}
