#include "proto/h2_memory.h"

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace inkwire::proto {

namespace {

constexpr std::size_t kMapThreshold = 16 * 1024;
// Every block carries a header saying how it was obtained, so free and realloc need no lookup.
// 16 bytes keep the payload aligned for any type nghttp2 stores.
struct alignas(16) BlockHeader {
  std::size_t size;    // payload bytes
  std::size_t mapped;  // 1: mmap, 0: malloc
};
static_assert(sizeof(BlockHeader) == 16);

BlockHeader* header_of(void* ptr) { return static_cast<BlockHeader*>(ptr) - 1; }

void* allocate(std::size_t size) {
  const std::size_t total = size + sizeof(BlockHeader);
  BlockHeader* block = nullptr;
  if (size >= kMapThreshold) {
    void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    block = static_cast<BlockHeader*>(p);
    block->mapped = 1;
  } else {
    block = static_cast<BlockHeader*>(std::malloc(total));
    if (!block) return nullptr;
    block->mapped = 0;
  }
  block->size = size;
  return block + 1;
}

void release(void* ptr) {
  if (!ptr) return;
  BlockHeader* block = header_of(ptr);
  if (block->mapped) {
    munmap(block, block->size + sizeof(BlockHeader));
  } else {
    std::free(block);
  }
}

void* h2_malloc(size_t size, void*) { return allocate(size); }
void h2_free(void* ptr, void*) { release(ptr); }
void* h2_calloc(size_t count, size_t size, void*) {
  if (size != 0 && count > static_cast<size_t>(-1) / size) return nullptr;
  void* p = allocate(count * size);
  // Mapped pages arrive zeroed; clearing them would make every page resident.
  if (p && !header_of(p)->mapped) std::memset(p, 0, count * size);
  return p;
}
void* h2_realloc(void* ptr, size_t size, void*) {
  if (!ptr) return allocate(size);
  if (size == 0) {
    release(ptr);
    return nullptr;
  }
  BlockHeader* block = header_of(ptr);
  if (!block->mapped && size < kMapThreshold) {
    auto* grown = static_cast<BlockHeader*>(std::realloc(block, size + sizeof(BlockHeader)));
    if (!grown) return nullptr;
    grown->size = size;
    return grown + 1;
  }
  void* fresh = allocate(size);
  if (!fresh) return nullptr;
  std::memcpy(fresh, ptr, block->size < size ? block->size : size);
  release(ptr);
  return fresh;
}

nghttp2_mem kAllocator{nullptr, h2_malloc, h2_free, h2_calloc, h2_realloc};

}  // namespace

nghttp2_mem* h2_allocator() { return &kAllocator; }

}  // namespace inkwire::proto
