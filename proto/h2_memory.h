#pragma once
// The allocator behind every nghttp2 session. nghttp2 1.52 allocates a 16 KiB frame buffer per
// session up front (aob.framebufs) and, for an idle session, touches only its first page. Blocks
// of 16 KiB and more are therefore mapped straight from the kernel (mmap), so untouched pages cost
// no resident memory; smaller blocks go to malloc as usual. This is what keeps an idle agent
// session within the relay's memory budget (issue 3: 10,000 sessions, <= 32 KiB each).

#include <nghttp2/nghttp2.h>

namespace inkwire::proto {

// Stateless; safe to share between sessions and threads.
nghttp2_mem* h2_allocator();

}  // namespace inkwire::proto
