// libckpt.so: the worker side of the built-in checkpoint engine.
//
// Preloaded into every process of a job (LD_PRELOAD, opt-in with
// CKPT_ENGINE=1). Its constructor starts a checkpoint thread that joins the
// coordinator as a DMTCP-protocol worker. On DMT_DO_CHECKPOINT it
//   1. meets the other processes at barrier CKPT:SUSPEND,
//   2. stops every other thread with a real-time signal; each handler saves a
//      jump buffer and parks (the kernel's signal frame on the thread's stack
//      holds its full register and xsave state),
//   3. meets the others at CKPT:FROZEN (nothing in the tree runs any more),
//      then records descriptors (pipe contents are copied with tee(), so no
//      data is consumed), signal dispositions, timers and mm fields,
//   4. forks a frozen copy of itself (raw clone: only this thread is copied;
//      the copy closes its descriptors and sleeps), meets CKPT:SNAPSHOT and
//      lets the application continue (unless the job is to exit afterwards),
//   5. writes the image from the copy's memory (/proc/<copy>/mem), through the
//      image writer, meets CKPT:WRITE, commits the generation (the first
//      worker of the computation writes the MANIFEST), sends the file name
//      and DMT_WORKER_RESUMING (or exits).
// On restart the restarter maps the image back and calls ckpt_restore_entry,
// which re-creates every thread with its original TID and jumps back into the
// saved jump buffers; threads then return from the signal handler through
// rt_sigreturn, which restores their registers and signal masks.
#define CKPT_RAWSYS_DEFINE
#include "engine/rawsys.h"

#include <arpa/inet.h>
#include <asm/prctl.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "engine/engine_abi.h"
#include "image/image_writer.h"
#include "image/store.h"
#include "protocol/message.h"

using namespace ckpt::engine;
namespace proto = ckpt::protocol;

namespace {

// ---------------------------------------------------------------- logging

int g_log_level = 1;  // 0 quiet, 1 warnings, 2 notes

void logmsg(int level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void logmsg(int level, const char* fmt, ...) {
  if (level > g_log_level) return;
  char buf[1024];
  int n = snprintf(buf, sizeof buf, "ckpt[%d]: ", (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(buf + n, sizeof buf - n, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  ssize_t w = write(2, buf, n);
  (void)w;
}

// ---------------------------------------------------------------- helpers

long futex(std::atomic<uint32_t>* addr, int op, uint32_t val, const struct timespec* ts) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), op, val, ts, nullptr, 0);
}
void futex_wake_all(std::atomic<uint32_t>* a) { futex(a, FUTEX_WAKE, INT32_MAX, nullptr); }

uint64_t mono_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

pid_t my_tid() { return (pid_t)syscall(SYS_gettid); }

uint64_t read_fs_base() {
  uint64_t v = 0;
  raw::sys2(SYS_arch_prctl, ARCH_GET_FS, (long)&v);
  return v;
}

bool read_whole(const char* path, std::string& out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out.clear();
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, n);
  }
  close(fd);
  return true;
}

// Reads a small file into a fixed buffer without allocating (usable while
// other threads are stopped, possibly inside malloc).
ssize_t read_small(const char* path, char* buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t got = 0;
  while (got + 1 < cap) {
    ssize_t n = read(fd, buf + got, cap - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += n;
  }
  buf[got] = 0;
  close(fd);
  return (ssize_t)got;
}

// ---------------------------------------------------------------- state

constexpr int kThreadFree = 0, kThreadSignalled = 1, kThreadSuspended = 2;

struct ThreadSlot {
  std::atomic<int> tid;
  std::atomic<int> state;
  raw::JumpBuf jb;
  uint64_t fs;
  uint64_t tid_addr;
  stack_t alt;
  uint32_t seq;  // release sequence the thread waits to change
};

ThreadSlot g_threads[kMaxThreads];
std::atomic<uint32_t> g_release_seq{0};
std::atomic<uint32_t> g_acks{0};
std::atomic<uint32_t> g_restored{0};
std::atomic<int> g_ckpt_pending{0};
std::atomic<int> g_in_fork{0};
std::atomic<uint32_t> g_pending_word{0};

int g_sig = 0;  // the checkpoint signal
pid_t g_ckpt_tid = 0;
pthread_t g_ckpt_thread;
raw::JumpBuf g_ckpt_jb;
uint64_t g_ckpt_fs = 0;
uint64_t g_ckpt_tid_addr = 0;
long g_tid_offset = -1;      // offset of glibc's pthread::tid from the thread pointer
long g_rseq_offset = 0;
unsigned g_rseq_size = 0;
volatile int g_restarted = 0;
RestartInfo* volatile g_rinfo = nullptr;

// Identity in the computation.
proto::UniquePid g_upid, g_comp, g_parent_upid;
uint32_t g_num_peers = 1;
uint64_t g_coord_ts = 0;
std::string g_hostname, g_progname, g_ckpt_root, g_coord_host = "127.0.0.1";
int g_coord_port = 7779;
int g_interval = -1;
bool g_enabled = false;
bool g_forked = true;

// Saved process state (lives in this library's memory, so it is part of the
// image itself and the restore code finds it where it left it).
KSigaction g_sigact[65];
struct itimerval g_itimers[3];
struct rlimit g_rlimits[RLIM_NLIMITS];
ProcHeader g_hdr;
FdDesc g_fds[1024];
int g_nfds = 0;
char* g_pipe_data = nullptr;  // mmap'ed; pipe contents in g_fds order
size_t g_pipe_data_len = 0, g_pipe_data_cap = 0;
char g_fail[512];             // why this checkpoint cannot be taken ("" = fine)

void set_fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void set_fail(const char* fmt, ...) {
  if (g_fail[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_fail, sizeof g_fail, fmt, ap);
  va_end(ap);
}

// ---------------------------------------------------------------- real libc

using sigprocmask_fn = int (*)(int, const sigset_t*, sigset_t*);
using sigaction_fn = int (*)(int, const struct sigaction*, struct sigaction*);
using fork_fn = pid_t (*)(void);
sigprocmask_fn real_sigprocmask, real_pthread_sigmask;
sigaction_fn real_sigaction;
fork_fn real_fork;

void resolve_real() {
  if (real_sigaction) return;
  real_sigprocmask = (sigprocmask_fn)dlsym(RTLD_NEXT, "sigprocmask");
  real_pthread_sigmask = (sigprocmask_fn)dlsym(RTLD_NEXT, "pthread_sigmask");
  real_fork = (fork_fn)dlsym(RTLD_NEXT, "fork");
  real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
}

// ---------------------------------------------------------------- coordinator I/O

bool write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= w;
  }
  return true;
}
bool read_all(int fd, void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n) {
    ssize_t r = read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    c += r;
    n -= r;
  }
  return true;
}

proto::Header base_header(proto::MsgType t, proto::WorkerState st) {
  proto::Header h = proto::default_header(g_upid, t);
  h.state = static_cast<uint32_t>(st);
  return h;
}

// Header plus payload in one write. Payloads here are small, so a stack
// buffer is enough (no allocation while threads are stopped).
bool send_msg(int fd, proto::Header h, const char* payload = nullptr, size_t len = 0) {
  uint8_t buf[proto::kHeaderSize + 1024];
  if (len > 1024) return false;
  h.extraBytes = (uint32_t)len;
  proto::encode_header(h, buf);
  if (len) memcpy(buf + proto::kHeaderSize, payload, len);
  return write_all(fd, buf, proto::kHeaderSize + len);
}

// Receives one message; the payload (if any) goes to `payload` (truncated
// to cap-1 bytes, NUL-terminated). Returns false on EOF or invalid data.
bool recv_msg(int fd, proto::Header& h, char* payload = nullptr, size_t cap = 0) {
  uint8_t buf[proto::kHeaderSize];
  if (!read_all(fd, buf, sizeof buf)) return false;
  h = proto::decode_header(buf);
  if (proto::validate(h) != proto::Validity::Ok) return false;
  uint32_t left = h.extraBytes;
  size_t got = 0;
  char tmp[256];
  while (left) {
    size_t chunk = left < sizeof tmp ? left : sizeof tmp;
    if (!read_all(fd, tmp, chunk)) return false;
    if (payload && cap) {
      size_t room = cap - 1 - got;
      size_t c = chunk < room ? chunk : room;
      memcpy(payload + got, tmp, c);
      got += c;
    }
    left -= chunk;
  }
  if (payload && cap) payload[got] = 0;
  return true;
}

int connect_coord() {
  struct addrinfo hints {};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* res = nullptr;
  char port[16];
  snprintf(port, sizeof port, "%d", g_coord_port);
  if (getaddrinfo(g_coord_host.c_str(), port, &hints, &res) != 0 || !res) return -1;
  int fd = -1;
  for (int attempt = 0; attempt < 10 && fd < 0; attempt++) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    if (connect(fd, res->ai_addr, res->ai_addrlen) == 0) break;
    close(fd);
    fd = -1;
    usleep(100000);
  }
  freeaddrinfo(res);
  // Every message goes out in one write, and some go out two in a row (the
  // checkpoint filename, then "resuming"): without TCP_NODELAY the second
  // waited for the coordinator's delayed ACK of the first (Nagle), so the
  // computation showed RUNNING only ~40 ms after each checkpoint had ended.
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

// The environment is read and written without the program's getenv/setenv:
// a program may define its own (bash does, over its shell variables, which do
// not exist yet while library constructors run), and the preloaded library
// would otherwise call those. So a bash started under the engine lost track of
// the connection it inherited across exec, reconnected, and the coordinator
// saw the old worker leave. Read `environ` directly; set through the C
// library's own setenv, so that the program later imports the values.
const char* env_get(const char* name) {
  size_t n = strlen(name);
  for (char** e = environ; e && *e; ++e)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  return nullptr;
}

void env_set(const char* name, const char* value) {
  using setenv_fn = int (*)(const char*, const char*, int);
  static setenv_fn libc_setenv = reinterpret_cast<setenv_fn>(dlsym(RTLD_NEXT, "setenv"));
  if (libc_setenv) libc_setenv(name, value, 1);
}

// Puts `fd` on kCoordFd. Not close-on-exec: an exec'ing worker keeps its
// connection (CKPT_COORD_OWNER records which pid owns it).
void install_coord_fd(int fd) {
  if (fd != kCoordFd) {
    dup2(fd, kCoordFd);
    close(fd);
  }
  fcntl(kCoordFd, F_SETFD, 0);
  char buf[32];
  snprintf(buf, sizeof buf, "%d", (int)getpid());
  env_set("CKPT_COORD_OWNER", buf);
}

std::string hello_payload(const std::string& prog) { return proto::make_hello_payload(g_hostname, prog); }

// DMT_NEW_WORKER on `fd`; fills vpid/comp/timestamp from the ACCEPT.
bool hello_new(int fd, const std::string& prog, int32_t& vpid) {
  proto::Header h = base_header(proto::MsgType::NewWorker, proto::WorkerState::Running);
  h.realPid = getpid();
  h.theCheckpointInterval = g_interval;
  std::string p = hello_payload(prog);
  if (!send_msg(fd, h, p.data(), p.size())) return false;
  proto::Header r;
  if (!recv_msg(fd, r)) return false;
  if (r.msg_type() != proto::MsgType::Accept) {
    logmsg(0, "the coordinator refused this process (%s)", proto::msg_type_name(r.type));
    return false;
  }
  vpid = r.virtualPid;
  g_comp = r.compGroup;
  g_coord_ts = r.coordTimeStamp;
  return true;
}

bool send_init_or_exec() {
  proto::Header h = base_header(proto::MsgType::UpdateProcessInfoAfterInitOrExec, proto::WorkerState::Running);
  h.realPid = getpid();
  std::string p = proto::make_cstring_payload(g_progname);
  return send_msg(kCoordFd, h, p.data(), p.size());
}

// Sends a barrier and waits for its release. Tolerates a duplicate
// DO_CHECKPOINT; exits on KILL_PEER (spec §3.7, §3.14).
bool barrier(const char* name, proto::WorkerState st) {
  proto::Header h = base_header(proto::MsgType::Barrier, st);
  h.set_name(name);
  if (!send_msg(kCoordFd, h)) return false;
  for (;;) {
    proto::Header r;
    char pl[128];
    if (!recv_msg(kCoordFd, r, pl, sizeof pl)) return false;
    switch (r.msg_type()) {
      case proto::MsgType::BarrierReleased:
        if (r.numPeers) g_num_peers = r.numPeers;
        if (strcmp(pl, name) != 0) logmsg(1, "barrier %s released as '%s'", name, pl);
        return true;
      case proto::MsgType::DoCheckpoint:
        continue;
      case proto::MsgType::KillPeer:
        _exit(0);
      default:
        logmsg(1, "unexpected %s while waiting for barrier %s", proto::msg_type_name(r.type), name);
        continue;
    }
  }
}

// ---------------------------------------------------------------- suspend

ThreadSlot* slot_for(pid_t tid) {
  for (auto& s : g_threads)
    if (s.tid.load(std::memory_order_acquire) == tid) return &s;
  return nullptr;
}

void restore_rseq_self() {
  if (!g_rseq_size) return;
  uint64_t tp = read_fs_base();
  raw::sys4(SYS_rseq, (long)(tp + g_rseq_offset), 32, 0, 0x53053053);
}

void ckpt_handler(int, siginfo_t*, void*) {
  int saved_errno = errno;
  ThreadSlot* volatile s = slot_for(my_tid());
  if (!s || s->state.load() != kThreadSignalled) {
    errno = saved_errno;
    return;  // not ours (stray signal or a late one)
  }
  s->fs = read_fs_base();
  s->tid_addr = g_tid_offset >= 0 ? s->fs + g_tid_offset : 0;
  sigaltstack(nullptr, &s->alt);
  s->seq = g_release_seq.load();
  if (ckpt_setjmp(&s->jb) == 0) {
    s->state.store(kThreadSuspended, std::memory_order_release);
    g_acks.fetch_add(1);
    futex_wake_all(&g_acks);
  } else {
    // Restored: rseq was re-registered by the restorer; the alternate
    // signal stack is per-thread kernel state and must be set again.
    if (!(s->alt.ss_flags & SS_DISABLE)) {
      stack_t a = s->alt;
      a.ss_flags = 0;
      sigaltstack(&a, nullptr);
    }
    g_restored.fetch_add(1);
    futex_wake_all(&g_restored);
  }
  while (g_release_seq.load() == s->seq) futex(&g_release_seq, FUTEX_WAIT, s->seq, nullptr);
  errno = saved_errno;
}

// Lists the process's threads without allocating.
int list_tids(pid_t* out, int cap) {
  int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[4096];
  int n = 0;
  for (;;) {
    long r = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (r <= 0) break;
    for (long off = 0; off < r;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      if (d->d_name[0] >= '0' && d->d_name[0] <= '9' && n < cap) out[n++] = atoi(d->d_name);
      off += d->d_reclen;
    }
  }
  close(fd);
  return n;
}

void release_threads() {
  g_release_seq.fetch_add(1);
  futex_wake_all(&g_release_seq);
}

// Stops every thread except this one. Returns false (with g_fail set) when a
// thread does not respond; threads already stopped stay stopped.
bool suspend_all() {
  for (auto& s : g_threads) {
    s.state.store(kThreadFree);
    s.tid.store(0);
  }
  g_acks.store(0);
  g_restored.store(0);  // counts threads back from a restart of this checkpoint
  pid_t pid = getpid();
  pid_t tids[kMaxThreads];
  int signalled = 0;
  for (int round = 0; round < 100; round++) {
    int n = list_tids(tids, kMaxThreads);
    int fresh = 0;
    for (int i = 0; i < n; i++) {
      if (tids[i] == g_ckpt_tid || slot_for(tids[i])) continue;
      ThreadSlot* free_slot = nullptr;
      for (auto& s : g_threads)
        if (s.tid.load() == 0) {
          free_slot = &s;
          break;
        }
      if (!free_slot) {
        set_fail("more than %zu threads", kMaxThreads);
        return false;
      }
      free_slot->state.store(kThreadSignalled);
      free_slot->tid.store(tids[i], std::memory_order_release);
      if (syscall(SYS_tgkill, pid, tids[i], g_sig) != 0) {
        free_slot->tid.store(0);
        free_slot->state.store(kThreadFree);
        continue;
      }
      fresh++;
      signalled++;
    }
    // Wait for every signalled thread to park (or to have exited).
    uint64_t deadline = mono_ns() + 10ull * 1000000000ull;
    for (;;) {
      int waiting = 0;
      for (auto& s : g_threads) {
        if (s.state.load() != kThreadSignalled) continue;
        if (syscall(SYS_tgkill, pid, s.tid.load(), 0) != 0) {  // thread is gone
          s.tid.store(0);
          s.state.store(kThreadFree);
          continue;
        }
        waiting++;
      }
      if (!waiting) break;
      if (mono_ns() > deadline) {
        for (auto& s : g_threads)
          if (s.state.load() == kThreadSignalled) {
            set_fail("thread %d does not respond to the checkpoint signal %d (it blocks or ignores it with raw system calls)",
                     s.tid.load(), g_sig);
            break;
          }
        return false;
      }
      uint32_t a = g_acks.load();
      struct timespec ts = {0, 2000000};
      futex(&g_acks, FUTEX_WAIT, a, &ts);
    }
    if (!fresh) break;
  }
  (void)signalled;
  return true;
}

// ---------------------------------------------------------------- state capture

void capture_signals() {
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    raw::sys4(SYS_rt_sigaction, sig, 0, (long)&g_sigact[sig], 8);
  }
  for (int w = 0; w < 3; w++) {
    getitimer(w, &g_itimers[w]);
    // A periodic ITIMER_REAL whose SIGALRM is still pending (every thread is
    // parked with signals blocked) reads as disarmed: the kernel re-arms it
    // only when the signal is dequeued. Restore it armed.
    struct itimerval& t = g_itimers[w];
    if (!t.it_value.tv_sec && !t.it_value.tv_usec && (t.it_interval.tv_sec || t.it_interval.tv_usec))
      t.it_value = t.it_interval;
  }
  for (int r = 0; r < RLIM_NLIMITS; r++) getrlimit((__rlimit_resource)r, &g_rlimits[r]);
}

bool fdinfo_value(const char* info, const char* key, char* out, size_t cap) {
  const char* p = strstr(info, key);
  if (!p) return false;
  p += strlen(key);
  while (*p == ' ' || *p == '\t') p++;
  size_t i = 0;
  while (*p && *p != '\n' && i + 1 < cap) out[i++] = *p++;
  out[i] = 0;
  return true;
}

void pipe_buf_reserve(size_t more) {
  if (g_pipe_data_len + more <= g_pipe_data_cap) return;
  size_t cap = g_pipe_data_cap ? g_pipe_data_cap : (1u << 20);
  while (cap < g_pipe_data_len + more) cap *= 2;
  void* p = mmap(nullptr, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  if (g_pipe_data) {
    memcpy(p, g_pipe_data, g_pipe_data_len);
    munmap(g_pipe_data, g_pipe_data_cap);
  }
  g_pipe_data = static_cast<char*>(p);
  g_pipe_data_cap = cap;
}

// Copies the bytes buffered in a pipe without consuming them.
void peek_pipe(int fd, FdDesc& d) {
  int tmp[2];
  if (pipe2(tmp, O_NONBLOCK | O_CLOEXEC) != 0) return;
  int sz = fcntl(fd, F_GETPIPE_SZ);
  if (sz > 0) fcntl(tmp[1], F_SETPIPE_SZ, sz);
  ssize_t n = tee(fd, tmp[1], INT32_MAX, SPLICE_F_NONBLOCK);
  if (n > 0) {
    pipe_buf_reserve(n);
    ssize_t got = 0;
    while (got < n) {
      ssize_t r = read(tmp[0], g_pipe_data + g_pipe_data_len + got, n - got);
      if (r <= 0) break;
      got += r;
    }
    d.data_len = (uint32_t)got;
    g_pipe_data_len += got;
  }
  close(tmp[0]);
  close(tmp[1]);
}

void capture_socket(int fd, FdDesc& d) {
  socklen_t l = sizeof(int);
  int acc = 0;
  getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &d.domain, &l);
  l = sizeof(int);
  getsockopt(fd, SOL_SOCKET, SO_TYPE, &d.type, &l);
  l = sizeof(int);
  getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &d.protocol, &l);
  l = sizeof(int);
  getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l);
  l = sizeof(int);
  getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &d.reuseaddr, &l);
  l = sizeof(int);
  getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &d.reuseport, &l);
  socklen_t al = sizeof d.addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(d.addr), &al) == 0) d.addr_len = al;
  bool inet = d.domain == AF_INET || d.domain == AF_INET6;
  if (inet && d.type == SOCK_STREAM) {
    d.kind = acc ? kFdTcpListen : kFdTcpConn;
  } else if (inet && d.type == SOCK_DGRAM) {
    d.kind = kFdUdp;
  } else if (d.domain == AF_UNIX) {
    d.kind = acc ? kFdUnixListen : kFdUnixConn;
  } else {
    set_fail("descriptor %d is a socket of family %d that the engine cannot restore", fd, d.domain);
  }
}

void capture_fds() {
  g_nfds = 0;
  g_pipe_data_len = 0;
  int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    set_fail("cannot list /proc/self/fd: %s", strerror(errno));
    return;
  }
  int fds[1024];
  int n = 0;
  char buf[4096];
  for (;;) {
    long r = syscall(SYS_getdents64, dfd, buf, sizeof buf);
    if (r <= 0) break;
    for (long off = 0; off < r;) {
      auto* de = reinterpret_cast<struct dirent64*>(buf + off);
      off += de->d_reclen;
      if (de->d_name[0] < '0' || de->d_name[0] > '9') continue;
      int fd = atoi(de->d_name);
      if (fd == dfd || fd == kCoordFd) continue;
      if (n < 1024) fds[n++] = fd;
      else set_fail("more than 1024 open descriptors");
    }
  }
  close(dfd);
  for (int i = 0; i < n; i++) {
    int fd = fds[i];
    FdDesc& d = g_fds[g_nfds];
    memset(&d, 0, sizeof d);
    d.fd = fd;
    char p[64], link[kMaxPath], info[4096], v[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t ll = readlink(p, link, sizeof link - 1);
    if (ll < 0) continue;  // closed meanwhile
    link[ll] = 0;
    snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
    if (read_small(p, info, sizeof info) < 0) continue;
    if (fdinfo_value(info, "flags:", v, sizeof v)) d.flags = (uint32_t)strtoul(v, nullptr, 8);
    if (fdinfo_value(info, "pos:", v, sizeof v)) d.offset = strtoll(v, nullptr, 10);
    d.cloexec = (fcntl(fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0;
    struct stat st;
    if (fstat(fd, &st) != 0) continue;
    d.dev = st.st_dev;
    d.ino = st.st_ino;
    snprintf(d.path, sizeof d.path, "%s", link);
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
      d.kind = kFdFile;
      d.file_size = st.st_size;
      d.file_mtime_ns = st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec;
      if (ll > 10 && strcmp(link + ll - 10, " (deleted)") == 0)
        set_fail("descriptor %d refers to a deleted file (%s); deleted open files are not supported", fd, link);
    } else if (S_ISFIFO(st.st_mode)) {
      d.kind = strncmp(link, "pipe:[", 6) == 0 ? kFdPipe : kFdFifo;
      d.pipe_size = (uint32_t)fcntl(fd, F_GETPIPE_SZ);
      if ((d.flags & O_ACCMODE) != O_WRONLY) peek_pipe(fd, d);
    } else if (S_ISCHR(st.st_mode)) {
      d.kind = isatty(fd) ? kFdTty : kFdChar;
    } else if (S_ISSOCK(st.st_mode)) {
      capture_socket(fd, d);
    } else if (strcmp(link, "anon_inode:[eventpoll]") == 0) {
      d.kind = kFdEpoll;
      const char* q = info;
      while ((q = strstr(q, "tfd:")) != nullptr) {
        int tfd = 0;
        unsigned ev = 0;
        unsigned long long data = 0;
        if (sscanf(q, "tfd: %d events: %x data: %llx", &tfd, &ev, &data) == 3 && d.n_epoll < kMaxEpollTargets)
          d.epoll[d.n_epoll++] = EpollTarget{tfd, ev, data};
        else if (d.n_epoll >= kMaxEpollTargets)
          set_fail("epoll descriptor %d watches more than %zu descriptors", fd, kMaxEpollTargets);
        q += 4;
      }
    } else if (strcmp(link, "anon_inode:[eventfd]") == 0) {
      d.kind = kFdEventfd;
      if (fdinfo_value(info, "eventfd-count:", v, sizeof v)) d.count = strtoull(v, nullptr, 16);
      if (fdinfo_value(info, "eventfd-semaphore:", v, sizeof v)) d.tfd_flags = atoi(v);
    } else if (strcmp(link, "anon_inode:[timerfd]") == 0) {
      d.kind = kFdTimerfd;
      if (fdinfo_value(info, "clockid:", v, sizeof v)) d.clockid = atoi(v);
      if (fdinfo_value(info, "ticks:", v, sizeof v)) d.count = strtoull(v, nullptr, 10);
      if (fdinfo_value(info, "settime flags:", v, sizeof v)) d.tfd_flags = (int)strtol(v, nullptr, 8);
      long long s1 = 0, n1 = 0, s2 = 0, n2 = 0;
      const char* q = strstr(info, "it_value:");
      if (q) sscanf(q, "it_value: (%lld, %lld)", &s1, &n1);
      q = strstr(info, "it_interval:");
      if (q) sscanf(q, "it_interval: (%lld, %lld)", &s2, &n2);
      d.it_value_ns = s1 * 1000000000ll + n1;
      d.it_interval_ns = s2 * 1000000000ll + n2;
    } else if (strcmp(link, "anon_inode:[signalfd]") == 0) {
      d.kind = kFdSignalfd;
      if (fdinfo_value(info, "sigmask:", v, sizeof v)) d.sigmask = strtoull(v, nullptr, 16);
    } else {
      set_fail("descriptor %d (%s) is a kind of kernel object the engine cannot checkpoint", fd, link);
      continue;
    }
    g_nfds++;
  }
}

void capture_mm() {
  ProcHeader& h = g_hdr;
  char stat[2048];
  if (read_small("/proc/self/stat", stat, sizeof stat) > 0) {
    // Fields after the command name (which may contain spaces).
    char* p = strrchr(stat, ')');
    if (p) {
      p += 2;
      unsigned long long f[60] = {};
      int idx = 3;  // field number of the state letter
      char* save = nullptr;
      for (char* tok = strtok_r(p, " ", &save); tok && idx < 60; tok = strtok_r(nullptr, " ", &save), idx++)
        f[idx] = strtoull(tok, nullptr, 10);
      h.start_code = f[26];
      h.end_code = f[27];
      h.start_stack = f[28];
      h.start_data = f[45];
      h.end_data = f[46];
      h.start_brk = f[47];
      h.arg_start = f[48];
      h.arg_end = f[49];
      h.env_start = f[50];
      h.env_end = f[51];
    }
  }
  h.brk = (uint64_t)syscall(SYS_brk, 0);
  int fd = open("/proc/self/auxv", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, h.auxv, sizeof h.auxv);
    h.auxv_size = n > 0 ? (uint32_t)n : 0;
    close(fd);
  }
  mode_t m = umask(0);
  umask(m);
  h.umask = m;
  if (!getcwd(h.cwd, sizeof h.cwd)) h.cwd[0] = 0;
  ssize_t n = readlink("/proc/self/exe", h.exe, sizeof h.exe - 1);
  h.exe[n > 0 ? n : 0] = 0;
}

// ---------------------------------------------------------------- memory dump

struct MapLine {
  uint64_t start, end, offset;
  uint32_t prot;
  bool shared;
  uint64_t inode;
  std::string path;
};

std::vector<MapLine> parse_maps(const std::string& text) {
  std::vector<MapLine> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    MapLine m{};
    char perms[8] = {};
    unsigned long long s, e, off, ino;
    unsigned maj, min;
    int consumed = 0;
    if (sscanf(line.c_str(), "%llx-%llx %7s %llx %x:%x %llu %n", &s, &e, perms, &off, &maj, &min, &ino, &consumed) < 7)
      continue;
    m.start = s;
    m.end = e;
    m.offset = off;
    m.inode = ino;
    m.prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) | (perms[2] == 'x' ? PROT_EXEC : 0);
    m.shared = perms[3] == 's';
    if (consumed > 0 && (size_t)consumed <= line.size()) m.path = line.substr(consumed);
    out.push_back(m);
  }
  return out;
}

struct Run {
  uint64_t start, end;
};

// Page runs of [start,end) that hold data worth saving, from pagemap:
// present or swapped pages; for private file mappings only pages that are no
// longer the file's (bit 61 clear: copied on write).
void page_runs(int pagemap_fd, uint64_t start, uint64_t end, bool anon_only, std::vector<Run>& runs) {
  const size_t kBatch = 4096;
  uint64_t ents[kBatch];
  uint64_t run_start = 0;
  bool in_run = false;
  for (uint64_t a = start; a < end;) {
    size_t pages = (end - a) / 4096;
    if (pages > kBatch) pages = kBatch;
    ssize_t r = pread(pagemap_fd, ents, pages * 8, (a / 4096) * 8);
    if (r <= 0) {
      // Unreadable pagemap: save everything.
      if (in_run) runs.push_back({run_start, a});
      runs.push_back({a, end});
      return;
    }
    size_t got = r / 8;
    for (size_t i = 0; i < got; i++) {
      uint64_t e = ents[i];
      bool present = (e >> 63) & 1, swapped = (e >> 62) & 1, filepage = (e >> 61) & 1;
      bool want = (present || swapped) && !(anon_only && filepage);
      uint64_t addr = a + i * 4096;
      if (want && !in_run) {
        run_start = addr;
        in_run = true;
      } else if (!want && in_run) {
        runs.push_back({run_start, addr});
        in_run = false;
      }
    }
    a += got * 4096;
  }
  if (in_run) runs.push_back({run_start, end});
}

uint64_t xcr0() {
  uint32_t lo = 0, hi = 0;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

struct SharedCopy {
  uint64_t start, end;
  void* copy;  // mmap'ed private copy taken while stopped
};
std::vector<SharedCopy> g_shared_copies;

// Shared anonymous memory is not copied by fork; take its contents while the
// process is still stopped (the vector was reserved before stopping).
void copy_shared_anon() {
  for (auto& c : g_shared_copies) {
    size_t len = c.end - c.start;
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      set_fail("cannot copy shared memory at %#lx", (unsigned long)c.start);
      continue;
    }
    struct iovec local{p, len}, remote{reinterpret_cast<void*>(c.start), len};
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)len) {
      // Fallback: plain copy (may fault on PROT_NONE pages).
      int mfd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
      if (mfd >= 0) {
        if (pread(mfd, p, len, (off_t)c.start) != (ssize_t)len) set_fail("cannot read shared memory at %#lx", (unsigned long)c.start);
        close(mfd);
      }
    }
    c.copy = p;
  }
}

bool is_shared_anon(const MapLine& m) {
  if (!m.shared) return false;
  return m.path.empty() || m.path.rfind("/dev/zero", 0) == 0 || m.path.rfind("/memfd:", 0) == 0 ||
         m.path.rfind("/SYSV", 0) == 0 || m.path.find(" (deleted)") != std::string::npos ||
         m.path.rfind("/dev/shm/", 0) == 0;
}

void plan_shared_copies() {
  g_shared_copies.clear();
  std::string maps;
  if (!read_whole("/proc/self/maps", maps)) return;
  for (auto& m : parse_maps(maps))
    if (is_shared_anon(m)) g_shared_copies.push_back({m.start, m.end, nullptr});
  g_shared_copies.reserve(g_shared_copies.size() + 8);
}

std::string image_dir() {
  return ckpt::image::generation_dir(g_ckpt_root, g_comp.text(), g_comp.generation);
}

void mkdir_p(const std::string& path) {
  std::string cur;
  for (size_t i = 0; i <= path.size(); i++) {
    if (i == path.size() || path[i] == '/') {
      if (!cur.empty()) mkdir(cur.c_str(), 0700);
    }
    if (i < path.size()) cur += path[i];
  }
}

std::string error_path() { return image_dir() + "/" + g_upid.text() + ".error"; }

uint32_t fork_flags_of(uint64_t s, uint64_t e);
uint64_t g_t_read, g_t_write, g_t_finish, g_t_scan;

// How long the threads were stopped by the checkpoint being written, when
// they were released before the write (forked mode); 0 otherwise. Recorded in
// the image header so that `ckpt checkpoint` reports the real freeze.
uint64_t g_last_stopped_ns = 0;

// Writes the image of the frozen copy `child`. Returns the final path.
std::string write_image(pid_t child, std::string& err) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/maps", child);
  std::string maps;
  if (!read_whole(p, maps)) {
    err = "cannot read the frozen copy's memory map";
    return {};
  }
  std::vector<MapLine> lines = parse_maps(maps);
  snprintf(p, sizeof p, "/proc/%d/pagemap", child);
  int pm = open(p, O_RDONLY | O_CLOEXEC);
  snprintf(p, sizeof p, "/proc/%d/mem", child);
  int mem = open(p, O_RDONLY | O_CLOEXEC);
  if (pm < 0 || mem < 0) {
    err = std::string("cannot open the frozen copy's memory: ") + strerror(errno);
    if (pm >= 0) close(pm);
    if (mem >= 0) close(mem);
    return {};
  }

  ProcHeader& h = g_hdr;
  std::vector<RegionDesc> descs;
  struct Piece {
    uint64_t start, end;
    size_t desc;
    const void* copy;  // shared-anon copy base or null
  };
  std::vector<Piece> pieces;
  g_t_read = g_t_write = g_t_finish = 0;
  uint64_t tscan = mono_ns();
  for (auto& m : lines) {
    if (m.path == "[vsyscall]") continue;
    if (m.path == "[vvar]") {
      h.vvar_start = m.start;
      h.vvar_end = m.end;
      continue;
    }
    if (m.path == "[vvar_vclock]") {
      h.vclock_start = m.start;
      h.vclock_end = m.end;
      continue;
    }
    if (m.path == "[vdso]") {
      h.vdso_start = m.start;
      h.vdso_end = m.end;
      continue;
    }
    // The frozen copy's own descriptors/buffers are ours too; nothing to skip:
    // everything mapped in the copy was mapped in the process.
    RegionDesc d{};
    d.start = m.start;
    d.end = m.end;
    d.flags = fork_flags_of(m.start, m.end);
    d.file_offset = m.offset;
    d.prot = m.prot;
    snprintf(d.path, sizeof d.path, "%s", m.path.c_str());
    bool deleted = m.path.find(" (deleted)") != std::string::npos;
    std::vector<Run> runs;
    if (is_shared_anon(m)) {
      d.kind = kRegAnonShared;
      d.flags |= kRegShared;
      const void* copy = nullptr;
      for (auto& c : g_shared_copies)
        if (c.start == m.start && c.end == m.end) copy = c.copy;
      if (!copy) {
        err = "shared memory at " + std::to_string(m.start) + " appeared during the checkpoint";
        close(pm);
        close(mem);
        return {};
      }
      descs.push_back(d);
      d.flags |= kRegHasData;
      descs.back() = d;
      pieces.push_back({m.start, m.end, descs.size() - 1, copy});
      continue;
    }
    if (m.path.empty() || m.path[0] == '[') {
      d.kind = m.path == "[heap]" ? kRegHeap : m.path == "[stack]" ? kRegStack : kRegAnon;
      page_runs(pm, m.start, m.end, false, runs);
    } else if (m.shared) {
      d.kind = kRegFileShared;
      d.flags |= kRegShared;
    } else {
      struct stat st;
      if (!deleted && stat(m.path.c_str(), &st) == 0) {
        d.kind = kRegFilePrivate;
        d.dev = st.st_dev;
        d.ino = st.st_ino;
        d.file_size = st.st_size;
        d.file_mtime_ns = st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec;
        page_runs(pm, m.start, m.end, true, runs);
      } else {
        // The file is gone: keep every page (unread pages of a deleted
        // file cannot be recovered later).
        d.kind = kRegAnon;
        d.flags |= kRegFileGone;
        runs.push_back({m.start, m.end});
      }
    }
    descs.push_back(d);
    for (auto& r : runs) {
      descs.back().flags |= kRegHasData;
      descs.back().data_bytes += r.end - r.start;
      pieces.push_back({r.start, r.end, descs.size() - 1, nullptr});
    }
  }
  for (auto& pc : pieces)
    if (pc.copy) descs[pc.desc].data_bytes = pc.end - pc.start;

  g_t_scan = mono_ns() - tscan;
  h.n_regions = (int32_t)descs.size();
  h.n_fds = g_nfds;
  uint64_t total = 0;
  for (auto& pc : pieces) total += pc.end - pc.start;
  h.total_data = total;
  // vDSO contents identify the kernel's vDSO build.
  if (h.vdso_start) {
    h.vdso_size = h.vdso_end - h.vdso_start;
    std::vector<uint8_t> v(h.vdso_size);
    if (pread(mem, v.data(), v.size(), (off_t)h.vdso_start) == (ssize_t)v.size()) {
      uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
      for (size_t i = 0; i < v.size(); i++) {
        a = (a ^ v[i]) * 0x100000001b3ull;
        b = (b ^ v[v.size() - 1 - i]) * 0x100000001b3ull;
      }
      memcpy(h.vdso_hash, &a, 8);
      memcpy(h.vdso_hash + 8, &b, 8);
    }
  }

  // Engine blob: header, region descriptors, descriptors, pipe data.
  std::vector<uint8_t> blob(sizeof(ProcHeader) + descs.size() * sizeof(RegionDesc) + g_nfds * sizeof(FdDesc) +
                            g_pipe_data_len);
  uint8_t* w = blob.data();
  memcpy(w, &h, sizeof h);
  w += sizeof h;
  if (!descs.empty()) memcpy(w, descs.data(), descs.size() * sizeof(RegionDesc));
  w += descs.size() * sizeof(RegionDesc);
  if (g_nfds) memcpy(w, g_fds, g_nfds * sizeof(FdDesc));
  w += g_nfds * sizeof(FdDesc);
  if (g_pipe_data_len) memcpy(w, g_pipe_data, g_pipe_data_len);

  ckpt::image::ImageMeta meta;
  meta.computation = g_comp.text();
  meta.generation = g_comp.generation;
  meta.num_peers = g_num_peers;
  meta.process_id = g_upid.text();
  if (!g_parent_upid.is_null()) meta.parent_id = g_parent_upid.text();
  meta.pid = h.pid;
  meta.ppid = h.ppid;
  meta.pgid = h.pgid;
  meta.sid = h.sid;
  meta.vpid = g_upid.pid;
  meta.hostname = g_hostname;
  meta.kernel_release = h.kernel_release;
  meta.program = h.exe;
  meta.engine = "ckpt-builtin " CKPT_VERSION;
  meta.stopped_ns = g_last_stopped_ns;
  meta.cpu_features = {h.xcr0, h.hwcap, h.hwcap2, 0};
  meta.engine_blob = std::move(blob);

  ckpt::image::WriterOptions wo;
  const char* comp = env_get("CKPT_COMPRESS");
  wo.codec = (comp && strcmp(comp, "none") == 0) ? ckpt::image::Codec::Raw : ckpt::image::Codec::Zstd;
  wo.zstd_level = 1;
  wo.threads = 2;
  // O_DIRECT by default. Measured on 2 GiB (benchmarks/README.md, Engine):
  // buffered writes copy every byte once more into the page cache and
  // allocate 2 GiB of cache pages while the resumed application takes its
  // copy-on-write faults, and the two fight for CPU and memory; forked
  // checkpoints took 12-15 s buffered against 2.9 s direct. The writer's own
  // stage buffers are what gets pinned, never the frozen copy's pages (those
  // are COW-shared with the application, and pinning them would make the
  // kernel copy each one). Filesystems that refuse O_DIRECT get buffered
  // writes (the stream falls back). CKPT_O_DIRECT=0 asks for buffered I/O.
  const char* od = env_get("CKPT_O_DIRECT");
  wo.o_direct = !(od && od[0] == '0');
  const char* sy = env_get("CKPT_NO_FSYNC");
  wo.sync = !(sy && sy[0] == '1');
  std::string dir = image_dir();
  mkdir_p(dir);
  std::string path = dir + "/" + g_upid.text() + ckpt::image::kImageSuffix;
  const size_t kBuf = 4u << 20;
  char* buf = static_cast<char*>(mmap(nullptr, kBuf, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  try {
    ckpt::image::ImageWriter wr(path, wo);
    wr.set_header(meta);
    for (auto& pc : pieces) {
      const RegionDesc& d = descs[pc.desc];
      ckpt::image::RegionDesc rd;
      rd.start = pc.start;
      rd.end = pc.end;
      rd.length = pc.end - pc.start;
      rd.file_offset = d.file_offset + (pc.start - d.start);
      rd.prot = d.prot;
      rd.map_flags = (d.flags & kRegShared) ? MAP_SHARED : MAP_PRIVATE;
      rd.kind = d.kind == kRegHeap    ? ckpt::image::RegionKind::Heap
                : d.kind == kRegStack ? ckpt::image::RegionKind::Stack
                : d.kind == kRegFilePrivate ? ckpt::image::RegionKind::File
                                            : ckpt::image::RegionKind::Anonymous;
      rd.name = d.path;
      wr.begin_region(rd);
      for (uint64_t a = pc.start; a < pc.end;) {
        size_t len = pc.end - a < kBuf ? pc.end - a : kBuf;
        const void* src;
        if (pc.copy) {
          src = static_cast<const char*>(pc.copy) + (a - pc.start);
        } else {
          uint64_t tr = mono_ns();
          ssize_t r = pread(mem, buf, len, (off_t)a);
          g_t_read += mono_ns() - tr;
          if (r != (ssize_t)len) {
            // A page that cannot be read (e.g. beyond a truncated file):
            // fill with zeros page by page.
            for (size_t o = 0; o < len; o += 4096)
              if (pread(mem, buf + o, 4096, (off_t)(a + o)) != 4096) memset(buf + o, 0, 4096);
          }
          src = buf;
        }
        ckpt::image::InBuffer in{src, len, 0};
        uint64_t tw = mono_ns();
        while (in.pos < in.size) wr.write(in);
        g_t_write += mono_ns() - tw;
        a += len;
      }
      wr.end_region();
    }
    uint64_t tf = mono_ns();
    wr.finish();
    g_t_finish = mono_ns() - tf;
  } catch (const std::exception& e) {
    err = e.what();
    path.clear();
  }
  munmap(buf, kBuf);
  close(pm);
  close(mem);
  logmsg(2, "image: scan %.1f ms, read %.1f ms, compress/queue %.1f ms, finish %.1f ms", g_t_scan / 1e6,
         g_t_read / 1e6, g_t_write / 1e6, g_t_finish / 1e6);
  return path;
}

void write_error_file(const std::string& why) {
  std::string dir = image_dir();
  mkdir_p(dir);
  std::string p = error_path();
  int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    std::string t = "checkpoint refused: " + why + "\n";
    write_all(fd, t.data(), t.size());
    fsync(fd);
    close(fd);
  }
}

// ---------------------------------------------------------------- fork flags

// Mappings marked MADV_DONTFORK (V8 marks its heap so) would be missing from
// the frozen copy, and MADV_WIPEONFORK ones would read as zeros. Both are
// switched off around the fork and recorded so the restarter sets them again.
struct Range {
  uint64_t start, end;
};
constexpr size_t kMaxForkFlagged = 8192;
Range g_dontfork[kMaxForkFlagged], g_wipeonfork[kMaxForkFlagged];
size_t g_n_dontfork = 0, g_n_wipeonfork = 0;
// Transparent huge page advice, read in the same pass and only recorded: the
// restarter applies it again (it used to be lost across a restart).
Range g_hugeadv[kMaxForkFlagged], g_nohugeadv[kMaxForkFlagged];
size_t g_n_hugeadv = 0, g_n_nohugeadv = 0;

// Reads a whole /proc file into an mmap'ed buffer (no malloc: other threads
// are stopped, possibly inside the allocator). Caller munmaps *cap bytes.
char* read_proc_mmap(const char* path, size_t* len, size_t* cap) {
  *cap = 1u << 20;
  *len = 0;
  char* buf = static_cast<char*>(mmap(nullptr, *cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (buf == MAP_FAILED) return nullptr;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    munmap(buf, *cap);
    return nullptr;
  }
  for (;;) {
    if (*len + 65536 > *cap) {
      void* nb = mremap(buf, *cap, *cap * 2, MREMAP_MAYMOVE);
      if (nb == MAP_FAILED) break;
      buf = static_cast<char*>(nb);
      *cap *= 2;
    }
    ssize_t n = read(fd, buf + *len, *cap - *len - 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    *len += n;
  }
  close(fd);
  buf[*len] = 0;
  return buf;
}

void clear_fork_flags() {
  g_n_dontfork = g_n_wipeonfork = 0;
  g_n_hugeadv = g_n_nohugeadv = 0;
  size_t len, cap;
  char* buf = read_proc_mmap("/proc/self/smaps", &len, &cap);
  if (!buf) {
    set_fail("cannot read /proc/self/smaps");
    return;
  }
  uint64_t cur_s = 0, cur_e = 0;
  for (char* line = buf; line && *line;) {
    char* nl = strchr(line, '\n');
    if (nl) *nl = 0;
    unsigned long long a, b;
    if (strncmp(line, "VmFlags:", 8) == 0) {
      if (strstr(line, " dc")) {
        if (g_n_dontfork < kMaxForkFlagged) g_dontfork[g_n_dontfork++] = {cur_s, cur_e};
        else set_fail("too many MADV_DONTFORK mappings");
      }
      if (strstr(line, " wf")) {
        if (g_n_wipeonfork < kMaxForkFlagged) g_wipeonfork[g_n_wipeonfork++] = {cur_s, cur_e};
        else set_fail("too many MADV_WIPEONFORK mappings");
      }
      // Advice only: beyond the table size it is dropped, not an error.
      if (strstr(line, " hg") && g_n_hugeadv < kMaxForkFlagged) g_hugeadv[g_n_hugeadv++] = {cur_s, cur_e};
      if (strstr(line, " nh") && g_n_nohugeadv < kMaxForkFlagged) g_nohugeadv[g_n_nohugeadv++] = {cur_s, cur_e};
    } else if (sscanf(line, "%llx-%llx ", &a, &b) == 2 && strchr(line, '-') && line[0] != ' ') {
      const char* colon = strchr(line, ':');
      const char* dash = strchr(line, '-');
      if (dash && (!colon || dash < colon)) {
        cur_s = a;
        cur_e = b;
      }
    }
    line = nl ? nl + 1 : nullptr;
  }
  munmap(buf, cap);
  for (size_t i = 0; i < g_n_dontfork; i++)
    madvise(reinterpret_cast<void*>(g_dontfork[i].start), g_dontfork[i].end - g_dontfork[i].start, MADV_DOFORK);
  for (size_t i = 0; i < g_n_wipeonfork; i++)
    madvise(reinterpret_cast<void*>(g_wipeonfork[i].start), g_wipeonfork[i].end - g_wipeonfork[i].start,
            MADV_KEEPONFORK);
}

void reapply_fork_flags() {
  for (size_t i = 0; i < g_n_dontfork; i++)
    madvise(reinterpret_cast<void*>(g_dontfork[i].start), g_dontfork[i].end - g_dontfork[i].start, MADV_DONTFORK);
  for (size_t i = 0; i < g_n_wipeonfork; i++)
    madvise(reinterpret_cast<void*>(g_wipeonfork[i].start), g_wipeonfork[i].end - g_wipeonfork[i].start,
            MADV_WIPEONFORK);
}

uint32_t fork_flags_of(uint64_t s, uint64_t e) {
  uint32_t f = 0;
  for (size_t i = 0; i < g_n_dontfork; i++)
    if (g_dontfork[i].start < e && s < g_dontfork[i].end) f |= kRegDontFork;
  for (size_t i = 0; i < g_n_wipeonfork; i++)
    if (g_wipeonfork[i].start < e && s < g_wipeonfork[i].end) f |= kRegWipeOnFork;
  for (size_t i = 0; i < g_n_hugeadv; i++)
    if (g_hugeadv[i].start < e && s < g_hugeadv[i].end) f |= kRegHugeAdvised;
  for (size_t i = 0; i < g_n_nohugeadv; i++)
    if (g_nohugeadv[i].start < e && s < g_nohugeadv[i].end) f |= kRegNoHugeAdvised;
  return f;
}

// ---------------------------------------------------------------- snapshot

extern "C" long ckpt_snapshot_fork(void);
asm(R"(
  .text
  .globl ckpt_snapshot_fork
  .type ckpt_snapshot_fork,@function
ckpt_snapshot_fork:
  mov $56, %eax
  xor %edi, %edi
  xor %esi, %esi
  xor %edx, %edx
  xor %r10d, %r10d
  xor %r8d, %r8d
  syscall
  test %rax, %rax
  jnz 1f
  mov $157, %eax
  mov $1, %edi
  mov $9, %esi
  syscall
  mov $436, %eax
  xor %edi, %edi
  mov $-1, %esi
  xor %edx, %edx
  syscall
2:
  mov $34, %eax
  syscall
  jmp 2b
1:
  ret
  .size ckpt_snapshot_fork, .-ckpt_snapshot_fork
)");

void kill_snapshot(pid_t child) {
  if (child <= 0) return;
  kill(child, SIGKILL);
  int st;
  while (waitpid(child, &st, __WALL) < 0 && errno == EINTR) {
  }
}

// ---------------------------------------------------------------- checkpoint

void fill_static_header() {
  ProcHeader& h = g_hdr;
  memcpy(h.magic, kProcMagic, 8);
  h.abi = kAbiVersion;
  h.header_size = sizeof(ProcHeader);
  h.pid = getpid();
  h.ppid = getppid();
  h.pgid = getpgid(0);
  h.sid = getsid(0);
  h.generation = g_comp.generation;
  h.upid_hostid = g_upid.hostid;
  h.upid_time = g_upid.time;
  h.upid_pid = g_upid.pid;
  h.upid_gen = g_upid.generation;
  h.comp_hostid = g_comp.hostid;
  h.comp_time = g_comp.time;
  h.comp_pid = g_comp.pid;
  h.comp_gen = g_comp.generation;
  h.num_peers = g_num_peers;
  h.ckpt_interval = g_interval;
  snprintf(h.progname, sizeof h.progname, "%s", g_progname.c_str());
  snprintf(h.hostname, sizeof h.hostname, "%s", g_hostname.c_str());
  struct utsname u;
  uname(&u);
  snprintf(h.kernel_release, sizeof h.kernel_release, "%s", u.release);
  h.xcr0 = xcr0();
  h.hwcap = getauxval(AT_HWCAP);
  h.hwcap2 = getauxval(AT_HWCAP2);
}

extern "C" void ckpt_restore_entry(RestartInfo* info);

bool after_restart();

// Returns true when this call is the restarted continuation.
bool checkpoint_once(const proto::Header& req) {
  volatile bool exit_after = req.exitAfterCkpt != 0;
  g_comp.generation = req.compGroup.generation;
  if (req.numPeers) g_num_peers = req.numPeers;
  g_fail[0] = 0;

  uint64_t t0 = mono_ns();
  // Losing the coordinator in the middle of a checkpoint abandons the
  // checkpoint, never the program: threads are released and it runs on
  // without checkpoints (the connection is gone; the main loop then ends).
  if (!barrier("CKPT:SUSPEND", proto::WorkerState::PreSuspend)) {
    logmsg(0, "lost the coordinator; checkpoint abandoned, the program continues");
    return false;
  }
  uint64_t t1 = mono_ns();
  // Keep fork() out while we stop threads, and wait for forks in flight.
  g_ckpt_pending.store(1);
  while (g_in_fork.load() > 0) usleep(1000);
  plan_shared_copies();
  bool stopped = suspend_all();
  uint64_t t2 = mono_ns();
  if (!barrier("CKPT:FROZEN", proto::WorkerState::Suspended)) {
    logmsg(0, "lost the coordinator; checkpoint abandoned, the program continues");
    release_threads();
    g_ckpt_pending.store(0);
    return false;
  }
  uint64_t t3 = mono_ns();

  pid_t child = -1;
  if (stopped) {
    fill_static_header();
    capture_mm();
    capture_signals();
    capture_fds();
    copy_shared_anon();
    g_hdr.restore_entry = reinterpret_cast<uint64_t>(&ckpt_restore_entry);
    g_ckpt_fs = read_fs_base();
    g_ckpt_tid_addr = g_tid_offset >= 0 ? g_ckpt_fs + g_tid_offset : 0;
    if (!g_fail[0]) {
      clear_fork_flags();
      if (ckpt_setjmp(&g_ckpt_jb) != 0) return true;  // restarted
      child = ckpt_snapshot_fork();
      reapply_fork_flags();
      if (child < 0) {
        set_fail("cannot fork the frozen copy: %s", strerror((int)-child));
        child = -1;
      }
    }
  }
  uint64_t t4 = mono_ns();
  if (!barrier("CKPT:SNAPSHOT", proto::WorkerState::Checkpointing)) {
    logmsg(0, "lost the coordinator; checkpoint abandoned, the program continues");
    kill_snapshot(child);
    release_threads();
    g_ckpt_pending.store(0);
    return false;
  }
  uint64_t t5 = mono_ns();
  // Forked checkpointing (default): the application runs while the image is
  // written from the frozen copy. CKPT_FORKED=0 keeps it stopped until the
  // image is written, as DMTCP does (less CPU competition, longer downtime).
  bool keep_stopped = (exit_after || !g_forked) && !g_fail[0];
  g_last_stopped_ns = 0;
  if (!keep_stopped) {
    release_threads();
    g_last_stopped_ns = mono_ns() - t1;  // from the first thread stopped to all released
  }
  g_ckpt_pending.store(0);
  futex_wake_all(&g_pending_word);

  std::string path, err;
  if (g_fail[0]) {
    err = g_fail;
  } else {
    path = write_image(child, err);
  }
  kill_snapshot(child);
  for (auto& c : g_shared_copies)
    if (c.copy) munmap(c.copy, c.end - c.start);
  g_shared_copies.clear();
  if (path.empty()) {
    logmsg(0, "checkpoint failed, the process continues: %s", err.c_str());
    write_error_file(err);
    path = error_path();
    if (keep_stopped) release_threads();
    keep_stopped = false;
    exit_after = false;
  }
  uint64_t t6 = mono_ns();
  if (!barrier("CKPT:WRITE", proto::WorkerState::Checkpointed)) {
    logmsg(0, "lost the coordinator after writing %s; the program continues", path.c_str());
    if (keep_stopped) release_threads();
    return false;
  }
  uint64_t t7 = mono_ns();
  // The first worker of the computation commits the generation once every
  // process has written its image (all are past CKPT:WRITE).
  if (g_upid.pid == g_comp.pid && path.size() > 5 && path.compare(path.size() - 5, 5, ".ckpt") == 0) {
    try {
      ckpt::image::commit_generation(image_dir());
    } catch (const std::exception& e) {
      logmsg(0, "generation %u not committed: %s", g_comp.generation, e.what());
    }
  }
  uint64_t t8 = mono_ns();
  logmsg(2,
         "checkpoint %u: suspend barrier %.1f ms, stop %.1f ms, frozen barrier %.1f ms, capture+fork %.1f ms, "
         "snapshot barrier %.1f ms, write %.1f ms, write barrier %.1f ms, commit %.1f ms",
         g_comp.generation, (t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6, (t4 - t3) / 1e6, (t5 - t4) / 1e6,
         (t6 - t5) / 1e6, (t7 - t6) / 1e6, (t8 - t7) / 1e6);
  proto::Header h = base_header(proto::MsgType::CkptFilename, proto::WorkerState::Checkpointed);
  std::string pl = proto::make_ckpt_filename_payload(path, "", g_hostname);
  send_msg(kCoordFd, h, pl.data(), pl.size());
  if (exit_after) _exit(0);
  if (keep_stopped) release_threads();
  send_msg(kCoordFd, base_header(proto::MsgType::WorkerResuming, proto::WorkerState::Running));
  return false;
}

void* ckpt_thread_main(void*) {
  g_ckpt_tid = my_tid();
  for (;;) {
    proto::Header h;
    if (!recv_msg(kCoordFd, h)) {
      // Coordinator gone: keep running without checkpoints.
      logmsg(2, "coordinator connection closed; checkpoints disabled");
      return nullptr;
    }
    switch (h.msg_type()) {
      case proto::MsgType::DoCheckpoint:
        if (checkpoint_once(h) && !after_restart()) return nullptr;
        break;
      case proto::MsgType::KillPeer:
        _exit(0);
      default:
        break;
    }
  }
}

void start_ckpt_thread() {
  sigset_t all, old;
  sigfillset(&all);
  real_pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 1 << 20);
  pthread_create(&g_ckpt_thread, &a, ckpt_thread_main, nullptr);
  pthread_attr_destroy(&a);
  real_pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

// ---------------------------------------------------------------- restart

// Returns false when the process continues without a coordinator.
bool after_restart() {
  g_restarted = 1;
  RestartInfo* info = g_rinfo;
  // Every restored thread has left the restorer's temporary stacks once it
  // counts itself in g_restored.
  uint32_t want = 0;
  for (auto& s : g_threads)
    if (s.state.load() == kThreadSuspended) want++;
  while (g_restored.load() < want) {
    uint32_t v = g_restored.load();
    struct timespec ts = {0, 5000000};
    futex(&g_restored, FUTEX_WAIT, v, &ts);
  }
  g_coord_host = info->coord_host;
  g_coord_port = info->coord_port;
  if (info->ckpt_dir[0]) g_ckpt_root = info->ckpt_dir;
  g_interval = info->ckpt_interval;
  if (info->image_fd >= 0) close(info->image_fd);
  munmap(reinterpret_cast<void*>(info->scratch_base), info->scratch_len);
  g_rinfo = nullptr;
  g_ckpt_tid = my_tid();

  int fd = connect_coord();
  if (fd < 0) {
    logmsg(0, "restarted, but the coordinator at %s:%d is unreachable; continuing without checkpoints",
           g_coord_host.c_str(), g_coord_port);
    release_threads();
    return false;
  }
  install_coord_fd(fd);
  proto::Header h = base_header(proto::MsgType::RestartWorker, proto::WorkerState::Restarting);
  h.compGroup = g_comp;
  h.numPeers = g_num_peers;
  h.realPid = getpid();
  h.theCheckpointInterval = g_interval;
  std::string p = hello_payload(g_progname);
  send_msg(kCoordFd, h, p.data(), p.size());
  proto::Header r;
  if (!recv_msg(kCoordFd, r) || r.msg_type() != proto::MsgType::Accept) {
    logmsg(0, "the coordinator refused the restarted process (%s); continuing without checkpoints",
           proto::msg_type_name(r.type));
    close(kCoordFd);
    release_threads();
    return false;
  }
  g_coord_ts = r.coordTimeStamp;
  if (!barrier("CKPT:RESTART", proto::WorkerState::Restarting)) {
    logmsg(0, "lost the coordinator during the restart; continuing without checkpoints");
    release_threads();
    return false;
  }
  release_threads();
  send_msg(kCoordFd, base_header(proto::MsgType::WorkerResuming, proto::WorkerState::Running));
  return true;
}

// clone3 for a thread: the child runs fn(arg) on the stack given in args.
CKPT_DEFINE_CLONE3_RUN(ckpt_clone3_thread);

struct TrampArg {
  const raw::JumpBuf* jb;
};

__attribute__((no_stack_protector)) void thread_trampoline(void* a) {
  restore_rseq_self();
  ckpt_longjmp(static_cast<const raw::JumpBuf*>(a), 1);
}

__attribute__((no_stack_protector)) void spawn_thread(pid_t tid, uint64_t fs, uint64_t tid_addr, const raw::JumpBuf* jb,
                                                     char* stack_lo, bool set_tid) {
  struct clone_args ca;
  for (size_t i = 0; i < sizeof ca; i++) reinterpret_cast<volatile char*>(&ca)[i] = 0;
  ca.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS |
             (tid_addr ? (CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID) : 0);
  ca.stack = reinterpret_cast<uint64_t>(stack_lo);
  ca.stack_size = kTempStack;
  ca.tls = fs;
  ca.parent_tid = tid_addr;
  ca.child_tid = tid_addr;
  pid_t want = tid;
  size_t size = sizeof ca;
  if (set_tid) {
    ca.set_tid = reinterpret_cast<uint64_t>(&want);
    ca.set_tid_size = 1;
  } else {
    size = 64;  // CLONE_ARGS_SIZE_VER0: no set_tid fields
  }
  long r = ckpt_clone3_thread(&ca, size, thread_trampoline, const_cast<raw::JumpBuf*>(jb));
  if (r < 0 && set_tid) {
    // The TID is taken or not ours to choose: any TID will do (glibc's
    // copy of it is updated through CLONE_PARENT_SETTID).
    ca.set_tid = 0;
    ca.set_tid_size = 0;
    r = ckpt_clone3_thread(&ca, 64, thread_trampoline, const_cast<raw::JumpBuf*>(jb));
  }
  if (r < 0) {
    static const char msg[] = "ckpt: cannot re-create a thread during restart\n";
    raw::sys3(SYS_write, 2, (long)msg, sizeof msg - 1);
    raw::sys1(SYS_exit_group, 70);
  }
}

}  // namespace

// Called by the restarter, on its temporary stack, after it mapped the image
// back. Uses raw system calls only until threads jump back into their saved
// contexts.
extern "C" __attribute__((no_stack_protector, visibility("default"))) void ckpt_restore_entry(RestartInfo* info) {
  g_rinfo = info;
  // The restarter's own code and heap are no longer needed.
  for (uint32_t i = 0; i < info->n_unmap && i < 128; i++)
    raw::sys2(SYS_munmap, (long)info->unmap[i][0], (long)(info->unmap[i][1] - info->unmap[i][0]));
  // PR_SET_MM_MAP (brk, arg/env ranges, auxv, and /proc/self/exe when allowed:
  // replacing exe_fd needs a user namespace; retry without it otherwise).
  if (raw::sys5(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, (long)info->mm_map, 104, 0) < 0 && info->exe_fd >= 0) {
    info->mm_map[12] = (info->mm_map[12] & 0xffffffffull) | (0xffffffffull << 32);
    raw::sys5(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, (long)info->mm_map, 104, 0);
  }
  if (info->exe_fd >= 0) raw::sys1(SYS_close, info->exe_fd);
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    raw::sys4(SYS_rt_sigaction, sig, (long)&g_sigact[sig], 0, 8);
  }
  for (int w = 0; w < 3; w++) raw::sys3(SYS_setitimer, w, (long)&g_itimers[w], 0);
  for (int r = 0; r < RLIM_NLIMITS; r++) raw::sys4(SYS_prlimit64, 0, r, (long)&g_rlimits[r], 0);
  bool set_tid = info->set_tid_ok != 0;
  char* stacks = reinterpret_cast<char*>(info->stacks_base);
  int slot = 1;
  pid_t pid = (pid_t)raw::sys0(SYS_getpid);
  const ThreadSlot* main_slot = nullptr;
  for (auto& s : g_threads) {
    if (s.state.load() != kThreadSuspended) continue;
    if (s.tid.load() == g_hdr.pid) {
      main_slot = &s;
      continue;
    }
    spawn_thread(s.tid.load(), s.fs, s.tid_addr, &s.jb, stacks + kTempStack * slot++, set_tid);
  }
  spawn_thread(g_ckpt_tid, g_ckpt_fs, g_ckpt_tid_addr, &g_ckpt_jb, stacks + kTempStack * slot++, set_tid);
  if (!main_slot) {
    // The main thread had exited before the checkpoint; so does this one.
    raw::sys1(SYS_exit, 0);
  }
  raw::sys2(SYS_arch_prctl, ARCH_SET_FS, (long)main_slot->fs);
  if (main_slot->tid_addr) {
    *reinterpret_cast<volatile int*>(main_slot->tid_addr) = pid;
    raw::sys1(SYS_set_tid_address, (long)main_slot->tid_addr);
  }
  restore_rseq_self();
  ckpt_longjmp(&main_slot->jb, 1);
}

// ---------------------------------------------------------------- interposition

extern "C" {

__attribute__((visibility("default"))) int sigprocmask(int how, const sigset_t* set, sigset_t* old) {
  resolve_real();
  if (g_enabled && set && (how == SIG_BLOCK || how == SIG_SETMASK) && sigismember(set, g_sig)) {
    sigset_t copy = *set;
    sigdelset(&copy, g_sig);
    return real_sigprocmask(how, &copy, old);
  }
  return real_sigprocmask(how, set, old);
}

__attribute__((visibility("default"))) int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) {
  resolve_real();
  if (g_enabled && set && (how == SIG_BLOCK || how == SIG_SETMASK) && sigismember(set, g_sig)) {
    sigset_t copy = *set;
    sigdelset(&copy, g_sig);
    return real_pthread_sigmask(how, &copy, old);
  }
  return real_pthread_sigmask(how, set, old);
}

__attribute__((visibility("default"))) int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  resolve_real();
  if (g_enabled && sig == g_sig && act) {
    // The checkpoint signal belongs to the engine; pretend success.
    if (old) memset(old, 0, sizeof *old);
    return 0;
  }
  if (g_enabled && act && sigismember(&act->sa_mask, g_sig)) {
    struct sigaction copy = *act;
    sigdelset(&copy.sa_mask, g_sig);
    return real_sigaction(sig, &copy, old);
  }
  return real_sigaction(sig, act, old);
}

__attribute__((visibility("default"))) pid_t fork(void) {
  resolve_real();
  if (!g_enabled) return real_fork();
  // Wait until no checkpoint is in progress, then announce the fork.
  for (;;) {
    while (g_ckpt_pending.load()) {
      struct timespec ts = {0, 2000000};
      futex(&g_pending_word, FUTEX_WAIT, 0, &ts);
    }
    g_in_fork.fetch_add(1);
    if (!g_ckpt_pending.load()) break;
    g_in_fork.fetch_sub(1);
  }
  // DMTCP order: the parent registers the child on a new connection first.
  int nfd = connect_coord();
  int32_t vpid = -1;
  proto::UniquePid parent = g_upid;
  proto::UniquePid comp_saved = g_comp;
  uint64_t ts_saved = g_coord_ts;
  if (nfd >= 0 && !hello_new(nfd, g_progname + "_(forked)", vpid)) {
    close(nfd);
    nfd = -1;
  }
  g_comp = comp_saved;
  g_coord_ts = ts_saved;
  pid_t r = real_fork();
  if (r == 0) {
    // Child: only this thread exists.
    for (auto& s : g_threads) {
      s.tid.store(0);
      s.state.store(kThreadFree);
    }
    g_in_fork.store(0);
    g_ckpt_pending.store(0);
    if (nfd >= 0) {
      close(kCoordFd);
      install_coord_fd(nfd);
      g_parent_upid = parent;
      g_upid = proto::UniquePid{g_upid.hostid, mono_ns(), vpid, 0};
      proto::Header h = base_header(proto::MsgType::UpdateProcessInfoAfterFork, proto::WorkerState::Running);
      h.realPid = getpid();
      send_msg(kCoordFd, h);
      start_ckpt_thread();
    } else {
      close(kCoordFd);
    }
    return 0;
  }
  if (nfd >= 0) close(nfd);
  g_in_fork.fetch_sub(1);
  return r;
}

}  // extern "C"

// ---------------------------------------------------------------- constructor

namespace {

void find_tid_offset() {
  auto* desc = static_cast<const uint32_t*>(dlsym(RTLD_DEFAULT, "_thread_db_pthread_tid"));
  uint64_t fs = read_fs_base();
  pid_t tid = my_tid();
  if (desc && desc[2] < 4096 && *reinterpret_cast<int*>(fs + desc[2]) == tid) {
    g_tid_offset = desc[2];
    return;
  }
  for (long off = 0; off < 2048; off += 4)
    if (*reinterpret_cast<int*>(fs + off) == tid) {
      g_tid_offset = off;
      return;
    }
}

void ckpt_init() {
  const char* on = env_get("CKPT_ENGINE");
  if (!on || strcmp(on, "1") != 0) return;
  resolve_real();
  if (const char* l = env_get("CKPT_LOG")) g_log_level = atoi(l);
  if (const char* h = env_get("DMTCP_COORD_HOST")) g_coord_host = h;
  if (const char* p = env_get("DMTCP_COORD_PORT")) g_coord_port = atoi(p);
  if (const char* i = env_get("DMTCP_CHECKPOINT_INTERVAL")) g_interval = atoi(i);
  const char* dir = env_get("CKPT_DIR");
  if (!dir) dir = env_get("DMTCP_CHECKPOINT_DIR");
  char cwd[kMaxPath];
  if (dir && dir[0] == '/') {
    g_ckpt_root = dir;
  } else {
    if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "/tmp");
    g_ckpt_root = dir ? std::string(cwd) + "/" + dir : std::string(cwd);
  }
  env_set("CKPT_DIR", g_ckpt_root.c_str());  // children that chdir keep the same root
  if (const char* f = env_get("CKPT_FORKED")) g_forked = f[0] != '0';
  g_sig = SIGRTMAX - 1;
  if (const char* s = env_get("CKPT_SIGNAL")) g_sig = atoi(s);
  struct utsname u;
  uname(&u);
  g_hostname = u.nodename;
  char exe[kMaxPath];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = 0;
  const char* base = strrchr(exe, '/');
  g_progname = base ? base + 1 : exe;
  g_rseq_offset = __rseq_offset;
  g_rseq_size = __rseq_size;
  find_tid_offset();

  struct sigaction sa {};
  sa.sa_sigaction = ckpt_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask);
  real_sigaction(g_sig, &sa, nullptr);
  // Make sure the signal is not blocked in this thread (inherited masks).
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, g_sig);
  real_pthread_sigmask(SIG_UNBLOCK, &one, nullptr);

  uint64_t hid = proto::hostid_hash(g_hostname);
  g_upid = proto::UniquePid{hid, mono_ns(), getpid(), 0};
  // After exec the process keeps the connection of its earlier image.
  const char* owner = env_get("CKPT_COORD_OWNER");
  bool reuse = owner && atoi(owner) == getpid() && fcntl(kCoordFd, F_GETFD) >= 0;
  if (!reuse) {
    if (fcntl(kCoordFd, F_GETFD) >= 0) close(kCoordFd);  // inherited from a parent: not ours
    int fd = connect_coord();
    if (fd < 0) {
      logmsg(0, "cannot reach the coordinator at %s:%d; running without checkpoints", g_coord_host.c_str(),
             g_coord_port);
      return;
    }
    int32_t vpid = -1;
    if (!hello_new(fd, g_progname, vpid)) {
      close(fd);
      return;
    }
    g_upid.pid = vpid;
    install_coord_fd(fd);
  } else {
    // The identity survives exec through the environment.
    if (const char* u2 = env_get("CKPT_UPID")) {
      unsigned long long a, b, c2;
      int p;
      unsigned g;
      if (sscanf(u2, "%llx:%llx:%d:%u:%llx:%llx:%llx", &a, &b, &p, &g, &c2, &c2, &c2) >= 4)
        g_upid = proto::UniquePid{a, b, p, g};
    }
    if (const char* c = env_get("CKPT_COMP")) {
      unsigned long long a, b;
      int p;
      unsigned g;
      if (sscanf(c, "%llx:%llx:%d:%u", &a, &b, &p, &g) == 4) g_comp = proto::UniquePid{a, b, p, g};
    }
  }
  char idbuf[128];
  snprintf(idbuf, sizeof idbuf, "%llx:%llx:%d:%u", (unsigned long long)g_upid.hostid,
           (unsigned long long)g_upid.time, g_upid.pid, g_upid.generation);
  env_set("CKPT_UPID", idbuf);
  snprintf(idbuf, sizeof idbuf, "%llx:%llx:%d:%u", (unsigned long long)g_comp.hostid,
           (unsigned long long)g_comp.time, g_comp.pid, g_comp.generation);
  env_set("CKPT_COMP", idbuf);
  g_enabled = true;
  send_init_or_exec();
  start_ckpt_thread();
}

// Run from a dynamic initializer defined after every other global of this
// file: within one translation unit those run in definition order, so the
// std::string globals above are constructed before ckpt_init() fills them
// (a constructor attribute gives no such ordering guarantee).
struct Init {
  Init() { ckpt_init(); }
} g_init_object;

}  // namespace
