// libckpt_dmtcp_reuseaddr.so: preloaded into jobs that run under DMTCP
// (`ckpt ... --engine dmtcp`).
//
// Why: at restart DMTCP re-creates each listening socket and binds it before
// it restores the socket's options. Right after the previous run stopped,
// the port usually still has connections in TIME_WAIT, so that bind fails
// with EADDRINUSE even though the application had set SO_REUSEADDR; DMTCP
// only logs a warning and the restored server silently has no listener.
//
// How: DMTCP appends the user's LD_PRELOAD after its own libraries, so its
// socket plugin reaches bind() through this wrapper (it looks the next
// definition up with RTLD_NEXT). When a TCP bind fails with EADDRINUSE and
// SO_REUSEADDR was off, we retry once with SO_REUSEADDR on. On Linux that
// retry only succeeds if no socket is *listening* on the address and the
// TIME_WAIT connections came from a socket that had SO_REUSEADDR itself (the
// application asked for it before the checkpoint): two live servers still
// cannot share a port, and programs that never asked for it are unaffected.
// If the retry fails too, the option is switched back off and the original
// error returned.
#include <dlfcn.h>
#include <errno.h>
#include <sys/socket.h>

namespace {

using BindFn = int (*)(int, const struct sockaddr*, socklen_t);

BindFn next_bind() {
  // Resolved once; function-local statics are initialised thread-safely.
  static BindFn fn = reinterpret_cast<BindFn>(dlsym(RTLD_NEXT, "bind"));
  return fn;
}

bool is_tcp_inet(int fd, const struct sockaddr* addr) {
  if (addr == nullptr || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)) return false;
  int type = 0;
  socklen_t len = sizeof type;
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int bind(int fd, const struct sockaddr* addr, socklen_t addrlen) {
  BindFn real = next_bind();
  if (real == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  int rc = real(fd, addr, addrlen);
  if (rc == 0 || errno != EADDRINUSE || !is_tcp_inet(fd, addr)) return rc;
  int reuse = 0;
  socklen_t len = sizeof reuse;
  if (getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, &len) != 0 || reuse != 0) {
    errno = EADDRINUSE;
    return -1;
  }
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) {
    errno = EADDRINUSE;
    return -1;
  }
  rc = real(fd, addr, addrlen);
  if (rc != 0) {
    int saved = errno;
    int off = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &off, sizeof off);
    errno = saved;
  }
  return rc;
}
