// ZeroMQ calls that tell ThreadSanitizer about the hand-off they make. libzmq (Debian's libzmq5)
// is not built with -fsanitize=thread, so the atomics and eventfd signalling through which a
// message crosses from the sending thread to the receiving one are invisible to TSan: the bytes
// of a message written before zmq_msg_send and read after zmq_msg_recv look unordered, and every
// stage-to-stage test reports a false data race. A suppression cannot help (the racing stacks
// hold only our frames). So every send releases and every successful receive acquires one
// shared address: "whatever was written before a send happens before what a receive does
// next", which ZeroMQ guarantees. Outside a TSan build these are the plain calls.
#pragma once

#include <zmq.h>

#if defined(__SANITIZE_THREAD__)
#define SLUICE_TSAN_HANDOFF 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLUICE_TSAN_HANDOFF 1
#endif
#endif

#ifdef SLUICE_TSAN_HANDOFF
#include <sanitizer/tsan_interface.h>
#endif

namespace sluice::core::zmq_handoff {

#ifdef SLUICE_TSAN_HANDOFF
inline char sync_point;  // one address for every hand-off of the process
inline void before_send() { __tsan_release(&sync_point); }
inline void after_receive() { __tsan_acquire(&sync_point); }
#else
inline void before_send() {}
inline void after_receive() {}
#endif

inline int msg_send(zmq_msg_t* msg, void* socket, int flags) {
  before_send();
  return zmq_msg_send(msg, socket, flags);
}

inline int send(void* socket, const void* data, size_t size, int flags) {
  before_send();
  return zmq_send(socket, data, size, flags);
}

inline int msg_recv(zmq_msg_t* msg, void* socket, int flags) {
  int rc = zmq_msg_recv(msg, socket, flags);
  if (rc >= 0) after_receive();
  return rc;
}

}  // namespace sluice::core::zmq_handoff
