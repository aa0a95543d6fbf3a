// ckpt-restart: launcher, restarter and image checker of the built-in engine.
//
//   ckpt-restart launch [--no-ns] -- CMD [ARGS...]
//   ckpt-restart restart [--no-ns] PATH...      (image files, a generation
//                                               directory or a computation
//                                               directory with `latest`)
//   ckpt-restart check [--json] PATH...
//
// Static executable linked at 0x7a000000 (see engine.gypi): below 2 GiB as
// static glibc requires, away from non-PIE programs at 0x400000, PIE programs
// at 0x55..., and the mmap area at 0x7f.... Jobs run inside their own user,
// pid and mount namespaces so that a restart can give every process and
// thread its original PID/TID with clone3(set_tid).
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/sched.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/blob.h"
#include "engine/engine_abi.h"
#include "engine/rawsys.h"
#include "image/image_reader.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

using namespace ckpt::engine;

namespace {

[[noreturn]] void die(int code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void die(int code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("ckpt-restart: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  _exit(code);
}

void warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void warn(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("ckpt-restart: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

std::string self_dir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  char* s = strrchr(buf, '/');
  if (s) *s = 0;
  return buf;
}

// ---------------------------------------------------------------- namespaces

bool write_file(const char* path, const char* text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
  close(fd);
  return ok;
}

// Enters new user+pid+mount namespaces (the caller's next child becomes pid
// 1). Returns false when the kernel does not allow it.
bool enter_namespaces() {
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS) != 0) return false;
  char m[64];
  write_file("/proc/self/setgroups", "deny");
  snprintf(m, sizeof m, "%u %u 1\n", uid, uid);
  if (!write_file("/proc/self/uid_map", m)) return false;
  snprintf(m, sizeof m, "%u %u 1\n", gid, gid);
  if (!write_file("/proc/self/gid_map", m)) return false;
  return true;
}

void setup_init_mounts() {
  mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    warn("cannot mount /proc for the job's pid namespace: %s", strerror(errno));
}

pid_t g_forward_to = 0;
void forward_signal(int sig) {
  if (g_forward_to > 0) kill(g_forward_to, sig);
}
void init_forward(int sig) { kill(-1, sig); }

void install_forwarders(void (*fn)(int)) {
  struct sigaction sa {};
  sa.sa_handler = fn;
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaction(s, &sa, nullptr);
}

// The outer process: waits for the namespace's init and mirrors its status.
[[noreturn]] void outer_wait(pid_t init) {
  g_forward_to = init;
  install_forwarders(forward_signal);
  int st = 0;
  while (waitpid(init, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st)) _exit(WEXITSTATUS(st));
  _exit(128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0));
}

// Reaps everything; exits with the status of `primary` once no child is left.
[[noreturn]] void init_reap(pid_t primary) {
  install_forwarders(init_forward);
  int primary_status = 0;
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, __WALL);
    if (p < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p == primary) primary_status = st;
  }
  if (WIFEXITED(primary_status)) _exit(WEXITSTATUS(primary_status));
  _exit(128 + (WIFSIGNALED(primary_status) ? WTERMSIG(primary_status) : 0));
}

// ---------------------------------------------------------------- launch

[[noreturn]] void cmd_launch(int argc, char** argv) {
  bool use_ns = true;
  int i = 0;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--no-ns") == 0) use_ns = false;
    else if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    } else break;
  }
  if (i >= argc) die(2, "launch: missing command (usage: ckpt-restart launch [--no-ns] -- CMD [ARGS...])");
  char** cmd = argv + i;
  std::string lib = self_dir() + "/libckpt.so";
  if (access(lib.c_str(), R_OK) != 0) die(2, "cannot find %s", lib.c_str());
  const char* old = getenv("LD_PRELOAD");
  std::string pre = lib + (old && *old ? std::string(":") + old : "");
  setenv("LD_PRELOAD", pre.c_str(), 1);
  setenv("CKPT_ENGINE", "1", 1);
  setenv("UV_USE_IO_URING", "0", 1);  // io_uring state cannot be checkpointed
  unsetenv("CKPT_COORD_OWNER");
  unsetenv("CKPT_UPID");
  unsetenv("CKPT_COMP");
  bool ns = use_ns && enter_namespaces();
  if (use_ns && !ns)
    warn("user namespaces are not available (%s); the job runs without them, so a restart cannot preserve PIDs",
         strerror(errno));
  pid_t init = fork();
  if (init < 0) die(1, "fork: %s", strerror(errno));
  if (init > 0) outer_wait(init);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (ns) setup_init_mounts();
  pid_t child = fork();
  if (child < 0) die(1, "fork: %s", strerror(errno));
  if (child == 0) {
    execvp(cmd[0], cmd);
    fprintf(stderr, "ckpt-restart: cannot run %s: %s\n", cmd[0], strerror(errno));
    _exit(127);
  }
  init_reap(child);
}

// ---------------------------------------------------------------- images

struct Proc {
  std::string path;
  ckpt::image::ImageMeta meta;
  ProcHeader hdr{};
  std::vector<RegionDesc> regions;
  std::vector<FdDesc> fds;
  std::vector<std::string> pipe_data;  // per fd
  std::vector<Proc*> children;
};

struct Issue {
  bool error;
  std::string msg;
};

// The first "*.error" file at most `depth` directory levels below `dir`.
std::string find_error_file(const std::string& dir, int depth) {
  std::vector<std::string> subs;
  std::string found;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      if (n.size() > 6 && n.compare(n.size() - 6, 6, ".error") == 0 && found.empty()) found = dir + "/" + n;
      if (e->d_type == DT_DIR) subs.push_back(dir + "/" + n);
    }
    closedir(d);
  }
  if (!found.empty() || depth <= 0) return found;
  for (auto& s : subs) {
    found = find_error_file(s, depth - 1);
    if (!found.empty()) break;
  }
  return found;
}

std::vector<std::string> list_images(const std::string& arg) {
  struct stat st;
  if (stat(arg.c_str(), &st) != 0) die(2, "%s: %s", arg.c_str(), strerror(errno));
  if (!S_ISDIR(st.st_mode)) return {arg};
  std::string dir = arg;
  std::string latest = dir + "/latest";
  if (stat(latest.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) dir = latest;
  std::vector<std::string> out;
  std::vector<std::string> subdirs;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 5 && n.compare(n.size() - 5, 5, ".ckpt") == 0) out.push_back(dir + "/" + n);
      if (n.size() > 6 && n.compare(n.size() - 6, 6, ".error") == 0)
        die(3, "%s/%s: the checkpoint of this generation was refused; see that file", dir.c_str(), n.c_str());
      if (n[0] != '.') subdirs.push_back(dir + "/" + n);
    }
    closedir(d);
  }
  if (out.empty()) {
    // A checkpoint root holding a single computation.
    std::vector<std::string> comps;
    for (auto& s : subdirs)
      if (stat((s + "/latest").c_str(), &st) == 0) comps.push_back(s);
    if (comps.size() == 1) return list_images(comps[0]);
    if (comps.size() > 1) die(2, "%s holds several computations; name one of them", arg.c_str());
    // Refused checkpoints leave "<process>.error" files in their generation.
    std::string err_file = find_error_file(dir, 3);
    if (!err_file.empty()) {
      char why[600] = "";
      if (FILE* f = fopen(err_file.c_str(), "re")) {
        if (!fgets(why, sizeof why, f)) why[0] = 0;
        fclose(f);
      }
      size_t l = strlen(why);
      if (l && why[l - 1] == '\n') why[l - 1] = 0;
      die(3, "%s: no complete checkpoint; %s: %s", arg.c_str(), err_file.c_str(), why);
    }
    die(2, "%s: no images (*.ckpt) found", arg.c_str());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void load_proc(Proc& p) {
  p.meta = ckpt::image::quick_check(p.path).meta;
  const auto& b = p.meta.engine_blob;
  ParsedBlob pb;
  try {
    pb = parse_engine_blob(b.data(), b.size());
  } catch (const std::exception& e) {
    die(3, "%s: %s", p.path.c_str(), e.what());
  }
  p.hdr = pb.hdr;
  p.regions = std::move(pb.regions);
  p.fds = std::move(pb.fds);
  p.pipe_data = std::move(pb.pipe_data);
}

// The restarter's own special mappings.
struct SelfMaps {
  uint64_t vvar_s = 0, vvar_e = 0, vclock_s = 0, vclock_e = 0, vdso_s = 0, vdso_e = 0;
  uint64_t exe_s = 0, exe_e = 0, heap_s = 0, heap_e = 0;
  std::vector<std::pair<uint64_t, uint64_t>> others;
};

SelfMaps read_self_maps() {
  SelfMaps m;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = 0;
  FILE* f = fopen("/proc/self/maps", "re");
  if (!f) die(1, "cannot read /proc/self/maps");
  char line[4600];
  while (fgets(line, sizeof line, f)) {
    unsigned long long s, e;
    int consumed = 0;
    if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %n", &s, &e, &consumed) < 2) continue;
    std::string path = line + consumed;
    while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
    if (path == "[vvar]") m.vvar_s = s, m.vvar_e = e;
    else if (path == "[vvar_vclock]") m.vclock_s = s, m.vclock_e = e;
    else if (path == "[vdso]") m.vdso_s = s, m.vdso_e = e;
    else if (path == exe) {
      if (!m.exe_s || s < m.exe_s) m.exe_s = s;
      if (e > m.exe_e) m.exe_e = e;
    } else if (path.empty() && m.exe_e && s == m.exe_e && !m.heap_s) {
      m.exe_e = e;  // the executable's bss beyond its file-backed pages
    } else if (path == "[heap]") m.heap_s = s, m.heap_e = e;
    else if (path == "[vsyscall]") continue;
    else m.others.push_back({s, e});
  }
  fclose(f);
  return m;
}

void vdso_digest(uint64_t start, uint64_t len, uint8_t out[32]) {
  memset(out, 0, 32);
  const uint8_t* v = reinterpret_cast<const uint8_t*>(start);
  uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
  for (size_t i = 0; i < len; i++) {
    a = (a ^ v[i]) * 0x100000001b3ull;
    b = (b ^ v[len - 1 - i]) * 0x100000001b3ull;
  }
  memcpy(out, &a, 8);
  memcpy(out + 8, &b, 8);
}

uint64_t my_xcr0() {
  uint32_t lo = 0, hi = 0;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

// Headroom kept free above the restarter's heap for its own allocations.
constexpr uint64_t kHeapHeadroom = 512ull << 20;

bool overlaps(uint64_t a, uint64_t b, uint64_t c, uint64_t d) { return a < d && c < b; }

bool port_free(const FdDesc& f) {
  int s = socket(f.domain, f.type | SOCK_CLOEXEC, f.protocol);
  if (s < 0) return true;
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (f.reuseport) setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  bool ok = bind(s, reinterpret_cast<const sockaddr*>(f.addr), f.addr_len) == 0;
  close(s);
  return ok;
}

std::string addr_text(const FdDesc& f) {
  char buf[128] = "?";
  if (f.domain == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(f.addr);
    const uint8_t* ip = reinterpret_cast<const uint8_t*>(&a->sin_addr);
    snprintf(buf, sizeof buf, "%u.%u.%u.%u:%u", ip[0], ip[1], ip[2], ip[3], ntohs(a->sin_port));
  } else if (f.domain == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(f.addr);
    snprintf(buf, sizeof buf, "[ipv6]:%u", ntohs(a->sin6_port));
  } else if (f.domain == AF_UNIX) {
    auto* a = reinterpret_cast<const sockaddr_un*>(f.addr);
    snprintf(buf, sizeof buf, "%s", a->sun_path[0] ? a->sun_path : "@abstract");
  }
  return buf;
}

// The checks `ckpt check` runs; the restarter runs the same ones before it
// changes anything.
std::vector<Issue> check_proc(const Proc& p, const SelfMaps& self) {
  std::vector<Issue> out;
  // A file mapped several times is reported once.
  auto add = [&](bool error, const std::string& m) {
    std::string full = p.path + ": " + m;
    for (auto& i : out)
      if (i.msg == full) return;
    out.push_back({error, full});
  };
  auto err = [&](const std::string& m) { add(true, m); };
  auto wrn = [&](const std::string& m) { add(false, m); };
  const ProcHeader& h = p.hdr;
  uint64_t cpu = my_xcr0();
  if (h.xcr0 & ~cpu) {
    char b[160];
    snprintf(b, sizeof b, "the CPU lacks register state the image uses (XCR0 image %#llx, here %#llx)",
             (unsigned long long)h.xcr0, (unsigned long long)cpu);
    err(b);
  }
  struct utsname u;
  uname(&u);
  uint8_t dg[32];
  if (self.vdso_s) vdso_digest(self.vdso_s, self.vdso_e - self.vdso_s, dg);
  bool layout_same = (h.vdso_end - h.vdso_start) == (self.vdso_e - self.vdso_s) &&
                     (h.vvar_end - h.vvar_start) == (self.vvar_e - self.vvar_s) &&
                     (h.vclock_end - h.vclock_start) == (self.vclock_e - self.vclock_s) &&
                     (h.vdso_start - h.vvar_start) == (self.vdso_s - self.vvar_s);
  if (!layout_same)
    err(std::string("the kernel's vDSO layout differs from the one the image was taken on (image kernel ") +
        h.kernel_release + ", here " + u.release + ")");
  else if (memcmp(dg, h.vdso_hash, 16) != 0)
    err(std::string("the kernel's vDSO code differs (image kernel ") + h.kernel_release + ", here " + u.release +
        "); restart on the same kernel");
  for (auto& r : p.regions) {
    if (overlaps(r.start, r.end, self.exe_s, self.heap_e ? self.heap_e + kHeapHeadroom : self.exe_e + kHeapHeadroom)) {
      char b[200];
      snprintf(b, sizeof b, "memory at %#llx-%#llx collides with the restarter (%#llx-%#llx)",
               (unsigned long long)r.start, (unsigned long long)r.end, (unsigned long long)self.exe_s,
               (unsigned long long)(self.heap_e + kHeapHeadroom));
      err(b);
      break;
    }
    if (r.kind == kRegFilePrivate || r.kind == kRegFileShared) {
      struct stat st;
      if (stat(r.path, &st) != 0) {
        err(std::string("mapped file is missing: ") + r.path);
      } else if (r.kind == kRegFilePrivate &&
                 (st.st_size != (off_t)r.file_size ||
                  st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec != r.file_mtime_ns)) {
        err(std::string("mapped file changed since the checkpoint: ") + r.path);
      }
    }
  }
  if (overlaps(h.vvar_start, h.vdso_end, self.exe_s, self.heap_e + kHeapHeadroom))
    err("the image's vDSO address collides with the restarter");
  for (auto& f : p.fds) {
    struct stat st;
    switch (f.kind) {
      case kFdFile:
        if (stat(f.path, &st) != 0) err(std::string("open file is missing: ") + f.path);
        else if (S_ISREG(st.st_mode) && st.st_size < f.offset)
          wrn(std::string("file is now shorter than the saved offset: ") + f.path);
        break;
      case kFdFifo:
      case kFdChar:
        if (stat(f.path, &st) != 0) err(std::string("missing: ") + f.path);
        break;
      case kFdTcpListen:
      case kFdUdp:
        if (!port_free(f)) err("address in use: " + addr_text(f) + " (stop whatever holds it, then restart)");
        break;
      case kFdTcpConn:
        wrn("descriptor " + std::to_string(f.fd) + " was a TCP connection; the program will see it reset");
        break;
      default:
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------- descriptors

struct SharedPipe {
  int rfd = -1, wfd = -1;
  bool has_read = false, has_write = false;
};

int g_fd_base = 1000;        // restarter's own descriptors live at and above this
int g_saved_stdio[3] = {-1, -1, -1};
std::map<uint64_t, SharedPipe> g_pipes;

int reset_connection(const FdDesc& f) {
  // A connection to a peer that vanished: build a TCP connection over
  // loopback and abort the far side, so reads report ECONNRESET.
  int dom = f.domain == AF_INET6 ? AF_INET6 : AF_INET;
  int l = socket(dom, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t sl;
  if (dom == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sl = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    sl = sizeof *a;
  }
  if (l < 0 || bind(l, reinterpret_cast<sockaddr*>(&ss), sl) != 0 || listen(l, 1) != 0 ||
      getsockname(l, reinterpret_cast<sockaddr*>(&ss), &sl) != 0) {
    if (l >= 0) close(l);
    return socket(dom, SOCK_STREAM, 0);
  }
  int c = socket(dom, SOCK_STREAM, 0);
  if (c >= 0 && connect(c, reinterpret_cast<sockaddr*>(&ss), sl) == 0) {
    int a = accept(l, nullptr, nullptr);
    if (a >= 0) {
      struct linger lg = {1, 0};
      setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      close(a);
    }
  }
  close(l);
  return c;
}

int open_fd(const Proc& p, size_t idx) {
  const FdDesc& f = p.fds[idx];
  int acc = f.flags & O_ACCMODE;
  int keep = f.flags & (O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | O_SYNC | O_DSYNC | O_ASYNC);
  int fd = -1;
  switch (f.kind) {
    case kFdFile: {
      fd = open(f.path, acc | keep | (f.flags & (O_DIRECTORY | O_NOFOLLOW | O_PATH)) | O_CLOEXEC);
      if (fd < 0) die(4, "%s: cannot reopen %s (descriptor %d): %s", p.path.c_str(), f.path, f.fd, strerror(errno));
      if (!(f.flags & O_PATH)) lseek(fd, f.offset, SEEK_SET);
      break;
    }
    case kFdFifo:
      fd = open(f.path, O_RDWR | O_NONBLOCK | O_CLOEXEC);  // O_RDWR: opening never blocks
      if (fd >= 0) fcntl(fd, F_SETFL, keep);
      break;
    case kFdChar:
      fd = open(f.path, acc | keep | O_CLOEXEC);
      break;
    case kFdTty: {
      int src = g_saved_stdio[f.fd <= 2 ? f.fd : (acc == O_RDONLY ? 0 : 2)];
      fd = src >= 0 ? fcntl(src, F_DUPFD_CLOEXEC, 0) : open("/dev/null", O_RDWR | O_CLOEXEC);
      break;
    }
    case kFdPipe: {
      SharedPipe& sp = g_pipes[f.ino];
      bool internal = sp.has_read && sp.has_write;
      if (internal) {
        fd = fcntl(acc == O_WRONLY ? sp.wfd : sp.rfd, F_DUPFD_CLOEXEC, 0);
        fcntl(fd, F_SETFL, keep);
      } else if (f.fd <= 2 && g_saved_stdio[f.fd] >= 0) {
        fd = fcntl(g_saved_stdio[f.fd], F_DUPFD_CLOEXEC, 0);  // the restarting shell's stdio
      } else {
        fd = open("/dev/null", (acc == O_WRONLY ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
      }
      break;
    }
    case kFdTcpListen:
    case kFdUdp:
    case kFdUnixListen: {
      fd = socket(f.domain, f.type | SOCK_CLOEXEC, f.protocol);
      if (fd < 0) die(4, "socket: %s", strerror(errno));
      int one = 1;
      // SO_REUSEADDR before bind, so a restart right after a stop does not
      // fail on connections still in TIME_WAIT.
      if (f.domain != AF_UNIX) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (f.reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
      if (f.domain == AF_UNIX) {
        auto* a = reinterpret_cast<const sockaddr_un*>(f.addr);
        if (a->sun_path[0]) unlink(a->sun_path);
      }
      if (f.addr_len && bind(fd, reinterpret_cast<const sockaddr*>(f.addr), f.addr_len) != 0)
        die(4, "%s: cannot bind %s again: %s", p.path.c_str(), addr_text(f).c_str(), strerror(errno));
      if (f.kind != kFdUdp && listen(fd, SOMAXCONN) != 0) die(4, "listen: %s", strerror(errno));
      if (!f.reuseaddr && f.domain != AF_UNIX) {
        int zero = 0;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof zero);
      }
      fcntl(fd, F_SETFL, keep);
      break;
    }
    case kFdTcpConn:
      fd = reset_connection(f);
      if (fd >= 0) fcntl(fd, F_SETFL, keep);
      break;
    case kFdUnixConn: {
      int sv[2];
      if (socketpair(AF_UNIX, f.type, 0, sv) == 0) {
        close(sv[1]);
        fd = sv[0];
        fcntl(fd, F_SETFL, keep);
      }
      break;
    }
    case kFdEventfd:
      fd = eventfd((unsigned)f.count, EFD_CLOEXEC | ((f.flags & O_NONBLOCK) ? EFD_NONBLOCK : 0) |
                                          (f.tfd_flags ? EFD_SEMAPHORE : 0));
      break;
    case kFdTimerfd: {
      fd = timerfd_create(f.clockid, TFD_CLOEXEC | ((f.flags & O_NONBLOCK) ? TFD_NONBLOCK : 0));
      if (fd >= 0 && (f.it_value_ns || f.it_interval_ns)) {
        struct itimerspec its {};
        int64_t v = f.it_value_ns ? f.it_value_ns : 1;
        its.it_value = {v / 1000000000, v % 1000000000};
        its.it_interval = {f.it_interval_ns / 1000000000, f.it_interval_ns % 1000000000};
        timerfd_settime(fd, 0, &its, nullptr);
      }
      break;
    }
    case kFdSignalfd: {
      sigset_t m;
      sigemptyset(&m);
      for (int s = 1; s <= 64; s++)
        if (f.sigmask & (1ull << (s - 1))) sigaddset(&m, s);
      fd = signalfd(-1, &m, SFD_CLOEXEC | ((f.flags & O_NONBLOCK) ? SFD_NONBLOCK : 0));
      break;
    }
    case kFdEpoll:
      fd = epoll_create1(EPOLL_CLOEXEC);
      break;
    default:
      fd = open("/dev/null", O_RDWR | O_CLOEXEC);
      break;
  }
  if (fd < 0) die(4, "%s: cannot re-create descriptor %d (%s): %s", p.path.c_str(), f.fd, f.path, strerror(errno));
  return fd;
}

void restore_fds(const Proc& p) {
  std::vector<int> tmp(p.fds.size());
  for (size_t i = 0; i < p.fds.size(); i++) {
    int fd = open_fd(p, i);
    // Park above the base so that placing never clobbers a fresh one.
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, g_fd_base + 200);
    close(fd);
    tmp[i] = hi;
  }
  for (size_t i = 0; i < p.fds.size(); i++) {
    const FdDesc& f = p.fds[i];
    if (dup3(tmp[i], f.fd, f.cloexec ? O_CLOEXEC : 0) < 0) die(4, "dup3(%d): %s", f.fd, strerror(errno));
    close(tmp[i]);
  }
  for (auto& f : p.fds) {
    if (f.kind != kFdEpoll) continue;
    for (uint32_t k = 0; k < f.n_epoll; k++) {
      struct epoll_event ev {};
      ev.events = f.epoll[k].events;
      ev.data.u64 = f.epoll[k].data;
      if (epoll_ctl(f.fd, EPOLL_CTL_ADD, f.epoll[k].fd, &ev) != 0)
        warn("epoll %d: cannot watch descriptor %d again: %s", f.fd, f.epoll[k].fd, strerror(errno));
    }
  }
  // Close everything else (the restarter's own descriptors, pipes of other
  // processes, stdio the program had closed).
  std::vector<int> keep;
  for (auto& f : p.fds) keep.push_back(f.fd);
  DIR* d = opendir("/proc/self/fd");
  std::vector<int> toclose;
  if (d) {
    int dfd = dirfd(d);
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      int fd = atoi(e->d_name);
      if (fd == dfd) continue;
      if (std::find(keep.begin(), keep.end(), fd) == keep.end()) toclose.push_back(fd);
    }
    closedir(d);
  }
  for (int fd : toclose) close(fd);
  // The restored program's checkpoint thread puts its coordinator connection
  // on kCoordFd while the program's other threads share the descriptor
  // table. Growing a shared table waits for an RCU grace period
  // (synchronize_rcu() in the kernel's expand_fdtable(): 16 ms of a 90 ms
  // restart of a small program here). Grow it now, while this process is
  // alone with its table; a table never shrinks.
  if (fcntl(kCoordFd, F_GETFD) < 0) {
    int tmp = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (tmp >= 0) {
      int probe = fcntl(tmp, F_DUPFD_CLOEXEC, kCoordFd);
      if (probe >= 0) close(probe);
      close(tmp);
    }
  }
}

// ---------------------------------------------------------------- memory swap

struct SwapPlan {
  Proc* proc;
  std::vector<std::pair<uint64_t, uint64_t>> unmap;
  SelfMaps self;
  char* scratch;
  size_t scratch_len;
  RestartInfo* info;
  int exe_fd;
  bool set_tid_ok;
  pid_t high_tid;  // TID for the population helper when TIDs are preserved (0: any)
};

SwapPlan* g_plan;
// CKPT_LOG >= 2, read before the swap (the environment lives on the stack
// the swap unmaps).
bool g_verbose = false;
bool g_o_direct = true;  // CKPT_O_DIRECT=0: read raw chunks buffered
bool g_thp_fill = false;  // CKPT_RESTORE_THP=1: huge-page advice on dense regions without saved advice

// Transparent huge page advice for a fresh region, before it is filled:
// saved advice is applied again. With CKPT_RESTORE_THP=1, a private
// anonymous region without advice that is at least half full of saved data
// (2 MiB or more) is advised MADV_HUGEPAGE too, so it is filled with one
// fault per 2 MiB. Off by default: on our VM the huge pages came from free
// memory the host had taken back (free page reporting works on 2 MiB blocks)
// and clearing them made 2 GiB restarts slower (1.8-10 s) than 4 KiB pages
// (1.2-3.1 s); and the advice would stay on the restored region (the kernel
// has no way back to "no advice").
void advise_huge_pages(const RegionDesc& r, bool fill) {
  size_t len = r.end - r.start;
  void* a = reinterpret_cast<void*>(r.start);
  if (r.flags & kRegNoHugeAdvised) {
    madvise(a, len, MADV_NOHUGEPAGE);
  } else if (r.flags & kRegHugeAdvised) {
    madvise(a, len, MADV_HUGEPAGE);
  } else if (fill && r.kind != kRegStack && r.data_bytes >= (2u << 20) && r.data_bytes * 2 >= len) {
    madvise(a, len, MADV_HUGEPAGE);
  }
}

// ---------------------------------------------------------------- page population
//
// On a VM, the first write to a page of fresh guest memory costs far more than
// the device time to fill it (the guest clears the page and the host backs it
// on that first touch; see docs/engine.md, "Performance"). An O_DIRECT read
// takes those faults itself, one page after the other, inside io_submit. So
// while the reads are in flight, the pages of the runs that follow are
// populated ahead (MADV_POPULATE_WRITE) by a helper task on the other CPU and
// by the restarter itself whenever it would otherwise wait for the device:
// restoring then takes about max(device, population / 2) instead of their
// sum. CKPT_RESTORE_POPULATE=0 turns this off.

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

constexpr uint64_t kPopulatePiece = 2u << 20;  // claimed per step: short enough to poll the device between steps

struct Populate {
  std::vector<std::pair<uint64_t, uint64_t>> pieces;  // [start, end), page aligned, in read order
  std::atomic<uint64_t> next{0};   // next piece to claim
  std::atomic<uint64_t> floor{0};  // pieces below this are already being read: the read faults them
  std::atomic<bool> stop{false};   // done, or MADV_POPULATE_WRITE refused: nobody populates
  std::atomic<bool> refused{false};  // MADV_POPULATE_WRITE is not supported (Linux < 5.14)
  std::atomic<uint64_t> by_helper{0}, by_self{0};  // bytes populated (CKPT_LOG=2 reports them)
  std::atomic<int64_t> helper_done_ns{0};           // CLOCK_MONOTONIC when the helper ran out of work
};

Populate g_pop;
bool g_helper_started = false;
constexpr size_t kMaxReadDepth = 8;
uint64_t g_aio_min_bytes = 256ull << 20;  // raw bytes below which reads are synchronous (CKPT_RESTORE_AIO_MIN, MiB)
size_t g_read_depth = 2;  // raw runs in flight (CKPT_RESTORE_DEPTH, 1..8)
bool g_populate = true;  // CKPT_RESTORE_POPULATE=0: let the reads fault their pages one by one

// How far population may run ahead of the reads (CKPT_RESTORE_LEAD, MiB;
// 0: no limit). When fresh pages are cheap (memory freed moments before is
// still backed by the host), two CPUs populating at full speed slowed the
// reads down, most likely by taking host CPU from the VM's I/O; a bounded
// lead spreads that work over the reads. When population is the slower
// side, the reads catch up with it and the bound never applies.
uint64_t g_lead_pieces = (256u << 20) / kPopulatePiece;

enum class Step { Done, Populated, Ahead };

// Claims and populates one piece: Done when none is left, Ahead when the
// next one is further ahead of the reads than the lead allows. Raw system
// calls only: the helper task shares this address space and thread pointer,
// so it must not touch errno or anything else of libc.
Step populate_one(std::atomic<uint64_t>& done) {
  for (;;) {
    if (g_pop.stop.load(std::memory_order_relaxed)) return Step::Done;
    uint64_t i = g_pop.next.load(std::memory_order_relaxed);
    if (i >= g_pop.pieces.size()) return Step::Done;
    uint64_t fl = g_pop.floor.load(std::memory_order_relaxed);
    if (i < fl) {  // the reads got there first
      g_pop.next.compare_exchange_weak(i, fl, std::memory_order_relaxed);
      continue;
    }
    if (i - fl >= g_lead_pieces) return Step::Ahead;
    if (!g_pop.next.compare_exchange_weak(i, i + 1, std::memory_order_relaxed)) continue;
    auto [a, b] = g_pop.pieces[i];
    long r = raw::sys3(SYS_madvise, (long)a, (long)(b - a), MADV_POPULATE_WRITE);
    // EINVAL: a kernel before 5.14. Anything else (ENOMEM, EFAULT) is left
    // to the read of that piece to report.
    if (r == -EINVAL) {
      g_pop.refused.store(true, std::memory_order_relaxed);
      g_pop.stop.store(true, std::memory_order_relaxed);
    }
    if (r == 0) done.fetch_add(b - a, std::memory_order_relaxed);
    return Step::Populated;
  }
}

[[noreturn]] void populate_helper(void*) {
  for (Step st; (st = populate_one(g_pop.by_helper)) != Step::Done;) {
    if (st == Step::Ahead) {
      struct timespec pause = {0, 200000};  // wait for the reads to catch up
      raw::sys2(SYS_nanosleep, (long)&pause, 0);
    }
  }
  struct timespec ts;
  raw::sys2(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts);
  g_pop.helper_done_ns.store(ts.tv_sec * 1000000000ll + ts.tv_nsec);
  raw::sys1(SYS_exit, 0);
  __builtin_unreachable();
}

}  // namespace

// clone3 whose child runs fn(arg) on the stack given in args and never
// returns (fn ends with SYS_exit).
CKPT_DEFINE_CLONE3_RUN(ckpt_restart_clone3);

namespace {

// Starts the population helper: a task sharing only this address space (not
// a thread: the restarter waits for it with waitpid, so its PID is free again
// before the program's threads are re-created with their saved TIDs). No exit
// signal, so the restored program never sees a SIGCHLD for it. With PID
// preservation it takes a TID from the top of the PID range (`high_tid`),
// where saved TIDs are not expected, instead of the next free one, which may
// be a TID another process of the tree is about to restore. Returns its PID,
// or -1 (then the restarter populates alone).
pid_t start_populate_helper(void* stack_lo, size_t stack_len, pid_t high_tid) {
  struct clone_args ca;
  memset(&ca, 0, sizeof ca);
  ca.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SYSVSEM;
  ca.exit_signal = 0;
  ca.stack = reinterpret_cast<uint64_t>(stack_lo);
  ca.stack_size = stack_len;
  if (high_tid < 0) return -1;
  pid_t want = high_tid;
  if (high_tid > 0) {
    ca.set_tid = reinterpret_cast<uint64_t>(&want);
    ca.set_tid_size = 1;
    long r = ckpt_restart_clone3(&ca, sizeof ca, populate_helper, nullptr);
    return r > 0 ? (pid_t)r : -1;
  }
  long r = ckpt_restart_clone3(&ca, 64, populate_helper, nullptr);  // CLONE_ARGS_SIZE_VER0
  return r > 0 ? (pid_t)r : -1;
}

uint64_t find_hole(const Proc& p, const SelfMaps& self, size_t len) {
  for (uint64_t cand = 0x200000000000ull; cand < 0x7e0000000000ull; cand += 0x10000000000ull) {
    bool bad = false;
    for (auto& r : p.regions)
      if (overlaps(cand, cand + len, r.start, r.end)) bad = true;
    if (overlaps(cand, cand + len, p.hdr.vvar_start, p.hdr.vdso_end)) bad = true;
    if (overlaps(cand, cand + len, self.vvar_s, self.vdso_e)) bad = true;
    for (auto& o : self.others)
      if (overlaps(cand, cand + len, o.first, o.second)) bad = true;
    if (bad) continue;
    void* m = mmap(reinterpret_cast<void*>(cand), len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == reinterpret_cast<void*>(cand)) return cand;
    if (m != MAP_FAILED) munmap(m, len);
  }
  die(5, "no free address range for the restarter's scratch memory");
}

bool move_block(uint64_t from, uint64_t len, uint64_t to) {
  if (!len || from == to) return true;
  void* r = mremap(reinterpret_cast<void*>(from), len, len, MREMAP_MAYMOVE | MREMAP_FIXED, reinterpret_cast<void*>(to));
  return r == reinterpret_cast<void*>(to);
}

// Runs on the scratch stack. From here on the restarter's original stack and
// every mapping that is not its executable, heap or vDSO are gone.
[[noreturn]] void swap_memory() {
  SwapPlan& sp = *g_plan;
  Proc& p = *sp.proc;
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  // Our own rseq area is about to be overwritten (or unmapped).
  syscall(SYS_rseq, (char*)__builtin_thread_pointer() + __rseq_offset, 32, RSEQ_FLAG_UNREGISTER, 0x53053053);
  for (auto& u : sp.unmap) munmap(reinterpret_cast<void*>(u.first), u.second - u.first);

  // If an image region sits where our own vDSO block is, park the block in
  // the scratch tail first (rare: both are placed randomly). Nothing below
  // calls into the vDSO until it is moved to its final place.
  SelfMaps& s0 = sp.self;
  for (auto& r : p.regions) {
    if (!overlaps(r.start, r.end, s0.vvar_s, s0.vdso_e)) continue;
    uint64_t tail = reinterpret_cast<uint64_t>(sp.scratch) + sp.scratch_len - 0x100000;
    uint64_t base = s0.vvar_s;
    if (!move_block(s0.vvar_s, s0.vvar_e - s0.vvar_s, tail) ||
        (s0.vclock_s && !move_block(s0.vclock_s, s0.vclock_e - s0.vclock_s, tail + (s0.vclock_s - base))) ||
        !move_block(s0.vdso_s, s0.vdso_e - s0.vdso_s, tail + (s0.vdso_s - base)))
      die(7, "cannot move the vDSO out of the image's way");
    auto shift = [&](uint64_t& a) {
      if (a) a = tail + (a - base);
    };
    shift(s0.vvar_e);
    shift(s0.vclock_s);
    shift(s0.vclock_e);
    shift(s0.vdso_s);
    shift(s0.vdso_e);
    s0.vvar_s = tail;
    break;
  }

  struct timespec ts0;
  clock_gettime(CLOCK_MONOTONIC, &ts0);
  // Re-create every mapping, writable for now.
  for (auto& r : p.regions) {
    size_t len = r.end - r.start;
    void* want = reinterpret_cast<void*>(r.start);
    void* m = MAP_FAILED;
    int prot = r.prot | PROT_WRITE;
    if (r.kind == kRegFilePrivate || r.kind == kRegFileShared) {
      int fd = open(r.path, (r.kind == kRegFileShared && (r.prot & PROT_WRITE)) ? O_RDWR : O_RDONLY);
      if (fd < 0) die(6, "%s: cannot open mapped file %s: %s", p.path.c_str(), r.path, strerror(errno));
      int mprot = r.kind == kRegFileShared ? r.prot : prot;
      m = mmap(want, len, mprot, (r.kind == kRegFileShared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED, fd,
               (off_t)r.file_offset);
      close(fd);
    } else if (r.kind == kRegAnonShared) {
      m = mmap(want, len, prot, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    } else {
      int extra = r.kind == kRegStack ? MAP_GROWSDOWN : 0;
      m = mmap(want, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE | extra, -1, 0);
    }
    if (m != want) die(6, "%s: cannot map %#llx-%#llx: %s", p.path.c_str(), (unsigned long long)r.start,
                       (unsigned long long)r.end, strerror(errno));
    bool anon_private = r.kind == kRegAnon || r.kind == kRegHeap || r.kind == kRegStack;
    advise_huge_pages(r, anon_private && g_thp_fill);
  }
  {
    // Raw chunks are read straight into place and verified there (no bounce
    // buffer, no copy); zstd chunks go through the reader. Pages no chunk
    // covers are left alone: fresh anonymous memory is already zero.
    ckpt::image::ImageReader reader(p.path);
    posix_fadvise(reader.fd(), 0, 0, POSIX_FADV_SEQUENTIAL);
    // Page-aligned raw runs are read with O_DIRECT: the device writes
    // straight into the restored pages, without a page-cache copy (and the
    // image does not evict the cache). The destination is fresh private
    // memory of this process, so pinning it for the DMA costs nothing extra.
    // CKPT_O_DIRECT=0, or a filesystem that refuses it, reads buffered.
    int dfd = g_o_direct ? open(p.path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC) : -1;
    struct RawRun {
      uint8_t* base;  // region start
      size_t region, k, end;  // chunks [k, end) of the region
      uint8_t* dst;
      uint64_t off, len;
    };
    std::vector<RawRun> runs;
    std::vector<std::pair<size_t, size_t>> packed;  // (region, chunk) of compressed chunks, in file order
    const auto& regs = reader.regions();
    for (size_t i = 0; i < regs.size(); i++) {
      auto* base = reinterpret_cast<uint8_t*>(regs[i].desc.start);
      auto chunks = reader.chunks_of(i);
      for (size_t k = 0; k < chunks.size();) {
        const auto& c = chunks[k];
        if (!(c.codec == ckpt::image::Codec::Raw && c.stored_len == c.logical_len)) {
          packed.push_back({i, k});
          k++;
          continue;
        }
        // A run of raw chunks that are contiguous both in the file and in
        // memory is read with one large read (up to 32 MiB), then each
        // chunk is verified in place.
        size_t end = k + 1;
        uint64_t len = c.logical_len;
        while (end < chunks.size() && len < (32u << 20)) {
          const auto& n = chunks[end];
          if (!(n.codec == ckpt::image::Codec::Raw && n.stored_len == n.logical_len) ||
              n.file_offset != c.file_offset + len || n.region_offset != c.region_offset + len)
            break;
          len += n.logical_len;
          end++;
        }
        runs.push_back({base, i, k, end, base + c.region_offset, c.file_offset, len});
        k = end;
      }
    }
    auto aligned = [&](const RawRun& r) {
      return dfd >= 0 && ((reinterpret_cast<uint64_t>(r.dst) | r.off | r.len) & 4095) == 0;
    };
    // Synchronous read of a whole run (O_DIRECT where possible).
    auto read_run = [&](const RawRun& r) {
      uint64_t got = 0;
      while (got < r.len) {
        bool direct = dfd >= 0 && ((reinterpret_cast<uint64_t>(r.dst + got) | (r.off + got) | (r.len - got)) & 4095) == 0;
        ssize_t n = pread(direct ? dfd : reader.fd(), r.dst + got, r.len - got, (off_t)(r.off + got));
        if (n < 0 && errno == EINVAL && direct) {  // accepted at open, refused now: go on buffered
          close(dfd);
          dfd = -1;
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
          die(6, "%s: cannot read chunk data at offset %llu: %s", p.path.c_str(), (unsigned long long)(r.off + got),
              n < 0 ? strerror(errno) : "end of file");
        got += n;
      }
    };
    auto verify_run = [&](const RawRun& r) {
      auto chunks = reader.chunks_of(r.region);
      for (size_t j = r.k; j < r.end; j++)
        if (XXH3_64bits(r.base + chunks[j].region_offset, chunks[j].logical_len) != chunks[j].xxh3)
          die(6, "%s: chunk at offset %llu is corrupt (checksum mismatch)", p.path.c_str(),
              (unsigned long long)chunks[j].file_offset);
    };
    // Pages to populate ahead, in the order they are filled: compressed
    // chunks first (decompressed below), then the raw runs. Only anonymous
    // memory: populating a file mapping for writing would copy (private) or
    // dirty (shared) file pages the image may not even cover.
    auto anon_at = [&](uint64_t a) {
      for (auto& r : p.regions)
        if (a >= r.start && a < r.end)
          return r.kind == kRegAnon || r.kind == kRegHeap || r.kind == kRegStack || r.kind == kRegAnonShared;
      return false;
    };
    g_pop.pieces.clear();
    auto add_pieces = [&](uint64_t a, uint64_t len) {
      if (!anon_at(a)) return;
      uint64_t s = a & ~4095ull, e = (a + len + 4095) & ~4095ull;
      for (; s < e; s += kPopulatePiece) g_pop.pieces.push_back({s, std::min(e, s + kPopulatePiece)});
    };
    std::vector<uint64_t> packed_end(packed.size()), run_end(runs.size());  // piece index after each
    for (size_t j = 0; j < packed.size(); j++) {
      const auto& c = reader.chunks_of(packed[j].first)[packed[j].second];
      add_pieces(regs[packed[j].first].desc.start + c.region_offset, c.logical_len);
      packed_end[j] = g_pop.pieces.size();
    }
    for (size_t j = 0; j < runs.size(); j++) {
      add_pieces(reinterpret_cast<uint64_t>(runs[j].dst), runs[j].len);
      run_end[j] = g_pop.pieces.size();
    }
    pid_t helper = -1;
    bool pop_main = g_populate && !g_pop.pieces.empty();
    if (pop_main) {
      // The first runs are submitted back to back (their reads fault them
      // in), so the helper starts after them; compressed chunks are filled
      // one at a time.
      uint64_t first = !packed.empty() ? packed_end[0] : run_end[std::min(g_read_depth, runs.size()) - 1];
      g_pop.floor.store(first);
      g_pop.next.store(g_pop.floor.load());
      g_pop.stop.store(false);
      helper = start_populate_helper(reinterpret_cast<void*>(sp.info->stacks_base), kTempStack, sp.high_tid);
      g_helper_started = helper > 0;
    }
    auto read_floor = [&](uint64_t piece_end) {
      if (pop_main && piece_end > g_pop.floor.load(std::memory_order_relaxed))
        g_pop.floor.store(piece_end, std::memory_order_relaxed);
    };
    for (size_t j = 0; j < packed.size(); j++) {
      read_floor(packed_end[j]);
      const auto& c = reader.chunks_of(packed[j].first)[packed[j].second];
      reader.read_chunk(c, reinterpret_cast<uint8_t*>(regs[packed[j].first].desc.start) + c.region_offset);
    }
    // With O_DIRECT, the next runs' reads are submitted asynchronously
    // (Linux AIO, CKPT_RESTORE_DEPTH in flight, default 2) before waiting
    // for the current one, which is verified while the next ones are read;
    // io_submit faults in whatever pages of a run are not populated yet.
    // Without AIO (or O_DIRECT) the runs are read one after the other.
    // Small images are read synchronously: io_destroy() waits for two RCU
    // grace periods (25 ms here, a third of a small restart), more than
    // overlapping the reads of a few runs with their verification saves.
    // Alternating restarts (medians): 128 MiB 148 ms synchronous against
    // 190 ms with AIO, 256 MiB 273 against 286 ms, 512 MiB 480 against 440.
    uint64_t run_bytes = 0;
    for (const auto& r : runs) run_bytes += r.len;
    aio_context_t ctx = 0;
    if (dfd >= 0 && runs.size() > 1 && run_bytes >= g_aio_min_bytes && syscall(SYS_io_setup, kMaxReadDepth, &ctx) != 0) ctx = 0;
    std::vector<int64_t> res(runs.size(), INT64_MIN);  // AIO result per run; INT64_MIN: not submitted
    std::vector<struct iocb> cbs(runs.size());
    auto submit = [&](size_t i) {
      if (!ctx || !aligned(runs[i])) return;
      struct iocb& cb = cbs[i];
      memset(&cb, 0, sizeof cb);
      cb.aio_data = i;
      cb.aio_lio_opcode = IOCB_CMD_PREAD;
      cb.aio_fildes = (uint32_t)dfd;
      cb.aio_buf = reinterpret_cast<uint64_t>(runs[i].dst);
      cb.aio_nbytes = runs[i].len;
      cb.aio_offset = (int64_t)runs[i].off;
      struct iocb* list[1] = {&cb};
      read_floor(run_end[i]);  // io_submit faults in whatever is still missing
      if (syscall(SYS_io_submit, ctx, 1, list) == 1) res[i] = INT64_MAX;  // in flight
    };
    size_t next_submit = 0;
    for (size_t i = 0; i < runs.size(); i++) {
      while (next_submit < runs.size() && next_submit < i + g_read_depth) submit(next_submit++);
      while (res[i] == INT64_MAX) {
        struct io_event ev[kMaxReadDepth];
        long n;
        if (pop_main) {
          // Populate a piece ahead between looks at the device instead of
          // sleeping on it.
          struct timespec zero {};
          n = syscall(SYS_io_getevents, ctx, 0, kMaxReadDepth, ev, &zero);
          if (n == 0) {
            Step st = populate_one(g_pop.by_self);
            if (st == Step::Done) pop_main = false;
            if (st != Step::Ahead) continue;
            n = syscall(SYS_io_getevents, ctx, 1, kMaxReadDepth, ev, nullptr);  // far enough ahead: wait
          }
        } else {
          n = syscall(SYS_io_getevents, ctx, 1, kMaxReadDepth, ev, nullptr);
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die(6, "%s: waiting for image reads failed: %s", p.path.c_str(), strerror(errno));
        for (long e = 0; e < n; e++) res[ev[e].data] = ev[e].res;
      }
      // Not submitted, failed or short: read it (again) synchronously.
      if (res[i] != (int64_t)runs[i].len) {
        read_floor(run_end[i]);
        read_run(runs[i]);
      }
      verify_run(runs[i]);
    }
    if (ctx) syscall(SYS_io_destroy, ctx);
    if (dfd >= 0) close(dfd);
    if (helper > 0) {
      // Reaped before the program's threads are re-created: its PID must be
      // free by then.
      g_pop.stop.store(true);
      int st;
      while (waitpid(helper, &st, __WALL) < 0 && errno == EINTR) {
      }
    }
  }
  if (g_verbose) {
    struct timespec ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    fprintf(stderr,
            "ckpt-restart: %s: memory mapped and read in %.1f ms (populated ahead: %.1f MiB by the helper, %.1f MiB "
            "by the restarter%s; the helper ran out of work after %.1f ms)\n",
            p.path.c_str(), (ts1.tv_sec - ts0.tv_sec) * 1e3 + (ts1.tv_nsec - ts0.tv_nsec) / 1e6,
            g_pop.by_helper.load() / 1048576.0, g_pop.by_self.load() / 1048576.0,
            !g_populate ? ", off" : g_pop.refused.load() ? ", not supported" : g_helper_started ? "" : ", no helper",
            g_pop.helper_done_ns.load() ? (g_pop.helper_done_ns.load() - (ts0.tv_sec * 1000000000ll + ts0.tv_nsec)) / 1e6 : 0.0);
  }
  for (auto& r : p.regions) {
    if (r.kind != kRegFileShared) mprotect(reinterpret_cast<void*>(r.start), r.end - r.start, r.prot);
    if (r.flags & kRegDontFork) madvise(reinterpret_cast<void*>(r.start), r.end - r.start, MADV_DONTFORK);
    if (r.flags & kRegWipeOnFork) madvise(reinterpret_cast<void*>(r.start), r.end - r.start, MADV_WIPEONFORK);
  }

  // Whatever of ours is still mapped (executable, heap, allocator buffers)
  // is handed to restore_entry to unmap once it runs from the image.
  {
    static char mbuf[1 << 16];
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    for (ssize_t n; fd >= 0 && got < sizeof mbuf - 1 && (n = read(fd, mbuf + got, sizeof mbuf - 1 - got)) > 0;) got += n;
    if (fd >= 0) close(fd);
    mbuf[got] = 0;
    RestartInfo* info = sp.info;
    uint64_t sc0 = reinterpret_cast<uint64_t>(sp.scratch), sc1 = sc0 + sp.scratch_len;
    for (char* line = mbuf; line && *line;) {
      char* nl = strchr(line, '\n');
      unsigned long long a, b;
      if (sscanf(line, "%llx-%llx", &a, &b) == 2) {
        bool keep = overlaps(a, b, sc0, sc1) || overlaps(a, b, sp.self.vvar_s, sp.self.vdso_e) || a >= 0x800000000000ull;
        for (auto& r : p.regions)
          if (overlaps(a, b, r.start, r.end)) keep = true;
        if (!keep && info->n_unmap < 128) {
          info->unmap[info->n_unmap][0] = a;
          info->unmap[info->n_unmap][1] = b;
          info->n_unmap++;
        }
      }
      line = nl ? nl + 1 : nullptr;
    }
  }

  // Move the vDSO block to where the image expects it. From here on no libc
  // call that might use the vDSO (its cached entry points are now stale).
  const ProcHeader& h = p.hdr;
  const SelfMaps& s = sp.self;
  uint64_t tmp = reinterpret_cast<uint64_t>(sp.scratch) + sp.scratch_len - 0x100000;  // reserved tail
  uint64_t base_delta = s.vvar_s;
  uint64_t blen = s.vdso_e - s.vvar_s;
  if (overlaps(s.vvar_s, s.vdso_e, h.vvar_start, h.vdso_end)) {
    // Two steps when source and target overlap.
    if (!move_block(s.vvar_s, s.vvar_e - s.vvar_s, tmp) ||
        (s.vclock_s && !move_block(s.vclock_s, s.vclock_e - s.vclock_s, tmp + (s.vclock_s - base_delta))) ||
        !move_block(s.vdso_s, s.vdso_e - s.vdso_s, tmp + (s.vdso_s - base_delta))) {
      raw::sys1(SYS_exit_group, 7);
    }
    base_delta = tmp;
  }
  uint64_t from_vvar = base_delta;
  (void)blen;
  if (!move_block(from_vvar, s.vvar_e - s.vvar_s, h.vvar_start) ||
      (s.vclock_s && !move_block(from_vvar + (s.vclock_s - s.vvar_s), s.vclock_e - s.vclock_s, h.vclock_start)) ||
      !move_block(from_vvar + (s.vdso_s - s.vvar_s), s.vdso_e - s.vdso_s, h.vdso_start)) {
    static const char msg[] = "ckpt-restart: cannot move the vDSO to the image's address\n";
    raw::sys3(SYS_write, 2, (long)msg, sizeof msg - 1);
    raw::sys1(SYS_exit_group, 7);
  }
  RestartInfo* info = sp.info;
  auto entry = reinterpret_cast<void (*)(RestartInfo*)>(h.restore_entry);
  entry(info);
  raw::sys1(SYS_exit_group, 8);
  __builtin_unreachable();
}

[[noreturn]] void run_on_stack(void (*fn)(), void* stack_top) {
  asm volatile(
      "mov %0, %%rsp\n"
      "xor %%ebp, %%ebp\n"
      "call *%1\n"
      "ud2\n" ::"r"(stack_top),
      "r"(fn)
      : "memory");
  __builtin_unreachable();
}

[[noreturn]] void restore_self(Proc& p, bool set_tid_ok) {
  restore_fds(p);
  if (p.hdr.cwd[0] && chdir(p.hdr.cwd) != 0) warn("cannot enter %s: %s", p.hdr.cwd, strerror(errno));
  umask(p.hdr.umask);
  // Everything the restarter still needs must come from its heap from now on.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);
  if (const char* lv = getenv("CKPT_LOG")) g_verbose = atoi(lv) >= 2;
  if (const char* od = getenv("CKPT_O_DIRECT")) g_o_direct = od[0] != '0';
  if (const char* th = getenv("CKPT_RESTORE_THP")) g_thp_fill = th[0] == '1';
  if (const char* po = getenv("CKPT_RESTORE_POPULATE")) g_populate = po[0] != '0';
  if (const char* d = getenv("CKPT_RESTORE_DEPTH")) g_read_depth = std::clamp<size_t>(strtoul(d, nullptr, 10), 1, kMaxReadDepth);
  if (const char* a = getenv("CKPT_RESTORE_AIO_MIN")) g_aio_min_bytes = strtoull(a, nullptr, 10) << 20;
  if (const char* l = getenv("CKPT_RESTORE_LEAD")) {
    uint64_t mib = strtoull(l, nullptr, 10);
    g_lead_pieces = mib ? std::max<uint64_t>(1, (mib << 20) / kPopulatePiece) : UINT64_MAX;
  }
  auto* plan = new SwapPlan{};
  g_plan = plan;
  plan->proc = &p;
  plan->set_tid_ok = set_tid_ok;
  if (set_tid_ok) {
    // Saved TIDs were handed out from the bottom of the range; a TID this
    // far up, different for every process of the tree, is free unless the
    // job ran long enough to wrap around (then no helper: see start_populate_helper).
    long pid_max = 32768;
    if (FILE* f = fopen("/proc/sys/kernel/pid_max", "re")) {
      if (fscanf(f, "%ld", &pid_max) != 1) pid_max = 32768;
      fclose(f);
    }
    long t = pid_max - 1 - getpid();
    plan->high_tid = t > getpid() ? (pid_t)t : -1;
  }
  plan->exe_fd = set_tid_ok ? open(p.hdr.exe, O_RDONLY | O_CLOEXEC) : -1;
  // Warm up the reader (and its allocations) before the maps are read.
  { ckpt::image::ImageReader warm(p.path); }
  plan->unmap.reserve(256);
  plan->self = read_self_maps();
  const size_t kMainStack = 1u << 20;
  const size_t kStacks = kTempStack * (kMaxThreads + 2);
  plan->scratch_len = 0x10000 + kMainStack + kStacks + 0x100000;
  uint64_t hole = find_hole(p, plan->self, plan->scratch_len);
  plan->scratch = reinterpret_cast<char*>(hole);
  // Everything not in {executable, heap, vDSO block, scratch} goes.
  plan->self = read_self_maps();
  for (auto& o : plan->self.others)
    if (!overlaps(o.first, o.second, hole, hole + plan->scratch_len)) plan->unmap.push_back(o);
  auto* info = reinterpret_cast<RestartInfo*>(plan->scratch);
  memset(info, 0, sizeof *info);
  info->magic = kRestartMagic;
  info->self_base = plan->self.exe_s;
  info->self_len = plan->self.exe_e - plan->self.exe_s;
  info->heap_base = plan->self.heap_s;
  info->heap_len = plan->self.heap_e ? plan->self.heap_e - plan->self.heap_s + kHeapHeadroom : 0;
  info->scratch_base = hole;
  info->scratch_len = plan->scratch_len;
  info->stacks_base = hole + 0x10000 + kMainStack;
  info->image_fd = -1;
  info->exe_fd = plan->exe_fd;
  info->set_tid_ok = set_tid_ok ? 1 : 0;
  const char* host = getenv("DMTCP_COORD_HOST");
  snprintf(info->coord_host, sizeof info->coord_host, "%s", host ? host : "127.0.0.1");
  const char* port = getenv("DMTCP_COORD_PORT");
  info->coord_port = port ? atoi(port) : 7779;
  const char* dir = getenv("CKPT_DIR");
  if (!dir) dir = getenv("DMTCP_CHECKPOINT_DIR");
  if (dir) snprintf(info->ckpt_dir, sizeof info->ckpt_dir, "%s", dir);
  const char* iv = getenv("DMTCP_CHECKPOINT_INTERVAL");
  info->ckpt_interval = iv ? atoi(iv) : p.hdr.ckpt_interval;
  // struct prctl_mm_map, with the auxv copied into scratch.
  uint64_t* auxv = reinterpret_cast<uint64_t*>(plan->scratch + 0x4000);
  memcpy(auxv, p.hdr.auxv, p.hdr.auxv_size);
  const ProcHeader& h = p.hdr;
  uint64_t mm[13] = {h.start_code, h.end_code, h.start_data, h.end_data, h.start_brk, h.brk, h.start_stack,
                     h.arg_start,  h.arg_end,  h.env_start,  h.env_end,  reinterpret_cast<uint64_t>(auxv), 0};
  mm[12] = uint64_t(h.auxv_size) | (uint64_t(uint32_t(plan->exe_fd)) << 32);
  memcpy(info->mm_map, mm, sizeof mm);
  plan->info = info;
  run_on_stack(swap_memory, plan->scratch + 0x10000 + kMainStack - 64);
}

// ---------------------------------------------------------------- tree

std::vector<std::unique_ptr<Proc>> g_procs;

// Forks a process with PID `want` when the kernel lets us (we hold
// CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN over the pid namespace, e.g. in
// our own namespaces or in a container started with that capability), else
// with whatever PID the kernel picks.
pid_t clone_with_pid(pid_t want, bool try_set_tid) {
  struct clone_args ca {};
  ca.exit_signal = SIGCHLD;
  if (try_set_tid) {
    ca.set_tid = reinterpret_cast<uint64_t>(&want);
    ca.set_tid_size = 1;
    long r = syscall(SYS_clone3, &ca, sizeof ca);
    if (r >= 0) return (pid_t)r;
    if (errno != EPERM && errno != EEXIST && errno != EINVAL && errno != ENOSPC) return -errno;
    ca.set_tid = 0;
    ca.set_tid_size = 0;
  }
  long r = syscall(SYS_clone3, &ca, sizeof ca);
  if (r < 0) return -errno;
  return (pid_t)r;
}

[[noreturn]] void restore_proc(Proc& p, bool set_tid_ok) {
  // Session and group first: children inherit them.
  if (p.hdr.sid == p.hdr.pid) setsid();
  if (p.hdr.pgid == p.hdr.pid) setpgid(0, 0);
  else setpgid(0, p.hdr.pgid);  // best effort: the leader may not exist yet
  for (Proc* c : p.children) {
    pid_t r = clone_with_pid(c->hdr.pid, set_tid_ok);
    if (r < 0) die(5, "cannot re-create process %d: %s", c->hdr.pid, strerror(-r));
    if (r == 0) restore_proc(*c, set_tid_ok);
  }
  // Threads get their TIDs back exactly when the process got its PID back.
  bool exact = getpid() == p.hdr.pid;
  if (!exact && set_tid_ok) warn("process %d restarted as %d (PID not preserved)", p.hdr.pid, (int)getpid());
  restore_self(p, exact);
}

[[noreturn]] void cmd_restart(int argc, char** argv) {
  bool use_ns = true;
  std::vector<std::string> paths;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--no-ns") == 0) use_ns = false;
    else paths.push_back(argv[i]);
  }
  if (paths.empty()) die(2, "restart: name an image, a generation directory or a checkpoint directory");
  std::vector<std::string> files;
  for (auto& p : paths)
    for (auto& f : list_images(p)) files.push_back(f);
  for (auto& f : files) {
    auto p = std::make_unique<Proc>();
    p->path = f;
    try {
      load_proc(*p);
    } catch (const std::exception& e) {
      die(3, "%s", e.what());
    }
    g_procs.push_back(std::move(p));
  }
  SelfMaps self = read_self_maps();
  bool bad = false;
  for (auto& p : g_procs)
    for (auto& is : check_proc(*p, self)) {
      warn("%s: %s", is.error ? "cannot restart" : "warning", is.msg.c_str());
      bad |= is.error;
    }
  if (bad) _exit(3);
  // Tree: a process whose parent is in the set is forked by that parent.
  std::vector<Proc*> roots;
  for (auto& p : g_procs) {
    Proc* parent = nullptr;
    for (auto& q : g_procs)
      if (q.get() != p.get() && q->hdr.pid == p->hdr.ppid) parent = q.get();
    if (parent) parent->children.push_back(p.get());
    else roots.push_back(p.get());
  }
  // Descriptor base above every saved descriptor.
  int maxfd = 2;
  for (auto& p : g_procs)
    for (auto& f : p->fds) maxfd = std::max(maxfd, f.fd);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  g_fd_base = std::max(maxfd + 16, 256);
  for (int i = 0; i < 3; i++) g_saved_stdio[i] = fcntl(i, F_DUPFD_CLOEXEC, g_fd_base);

  bool ns = use_ns && enter_namespaces();
  if (use_ns && !ns)
    warn("user namespaces are not available (%s); restarting without PID preservation", strerror(errno));
  pid_t init = fork();
  if (init < 0) die(1, "fork: %s", strerror(errno));
  if (init > 0) outer_wait(init);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (ns) setup_init_mounts();
  bool set_tid_ok = true;  // attempted everywhere; falls back per process
  // Pipes shared inside the tree, with their buffered bytes.
  for (auto& p : g_procs)
    for (size_t i = 0; i < p->fds.size(); i++) {
      const FdDesc& f = p->fds[i];
      if (f.kind != kFdPipe) continue;
      SharedPipe& sp = g_pipes[f.ino];
      if ((f.flags & O_ACCMODE) == O_WRONLY) sp.has_write = true;
      else if ((f.flags & O_ACCMODE) == O_RDONLY) sp.has_read = true;
      else sp.has_read = sp.has_write = true;
    }
  for (auto& [ino, sp] : g_pipes) {
    if (!(sp.has_read && sp.has_write)) continue;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) die(1, "pipe: %s", strerror(errno));
    sp.rfd = fcntl(fds[0], F_DUPFD_CLOEXEC, g_fd_base + 8);
    sp.wfd = fcntl(fds[1], F_DUPFD_CLOEXEC, g_fd_base + 8);
    close(fds[0]);
    close(fds[1]);
    const std::string* data = nullptr;
    for (auto& p : g_procs)
      for (size_t i = 0; i < p->fds.size(); i++)
        if (p->fds[i].kind == kFdPipe && p->fds[i].ino == ino) {
          if (p->fds[i].pipe_size) fcntl(sp.wfd, F_SETPIPE_SZ, p->fds[i].pipe_size);
          if (!data && !p->pipe_data[i].empty()) data = &p->pipe_data[i];
        }
    if (data && write(sp.wfd, data->data(), data->size()) != (ssize_t)data->size())
      die(1, "cannot refill a pipe: %s", strerror(errno));
  }
  pid_t primary = 0;
  for (Proc* r : roots) {
    pid_t c = clone_with_pid(r->hdr.pid, set_tid_ok);
    if (c < 0) die(5, "cannot re-create process %d: %s", r->hdr.pid, strerror(-c));
    if (c == 0) restore_proc(*r, set_tid_ok);
    if (!primary) primary = c;
  }
  for (auto& [ino, sp] : g_pipes) {
    if (sp.rfd >= 0) close(sp.rfd);
    if (sp.wfd >= 0) close(sp.wfd);
  }
  init_reap(primary);
}

// ---------------------------------------------------------------- check

std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if ((unsigned char)c < 0x20) {
      char b[8];
      snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else o += c;
  }
  return o + "\"";
}

[[noreturn]] void cmd_check(int argc, char** argv) {
  bool json = false;
  std::vector<std::string> paths;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) json = true;
    else paths.push_back(argv[i]);
  }
  if (paths.empty()) die(2, "check: name an image or a directory");
  std::vector<Issue> issues;
  std::vector<std::string> files;
  for (auto& p : paths)
    for (auto& f : list_images(p)) files.push_back(f);
  SelfMaps self = read_self_maps();
  std::string procs_json;
  for (auto& f : files) {
    Proc p;
    p.path = f;
    try {
      load_proc(p);
    } catch (const std::exception& e) {
      issues.push_back({true, e.what()});
      continue;
    }
    for (auto& is : check_proc(p, self)) issues.push_back(is);
    char b[512];
    snprintf(b, sizeof b,
             "{\"path\":%s,\"pid\":%d,\"ppid\":%d,\"program\":%s,\"generation\":%u,\"regions\":%d,\"fds\":%d,"
             "\"dataBytes\":%llu}",
             json_str(f).c_str(), p.hdr.pid, p.hdr.ppid, json_str(p.hdr.exe).c_str(), p.hdr.generation,
             p.hdr.n_regions, p.hdr.n_fds, (unsigned long long)p.hdr.total_data);
    if (!procs_json.empty()) procs_json += ",";
    procs_json += b;
  }
  bool ok = std::none_of(issues.begin(), issues.end(), [](const Issue& i) { return i.error; });
  if (json) {
    std::string o;
    o += "{\"ok\":";
    o += ok ? "true" : "false";
    o += ",\"processes\":[";
    o += procs_json;
    o += "],\"issues\":[";
    for (size_t i = 0; i < issues.size(); i++) {
      if (i) o += ",";
      o += "{\"level\":\"";
      o += issues[i].error ? "error" : "warning";
      o += "\",\"message\":";
      o += json_str(issues[i].msg);
      o += "}";
    }
    o += "]}\n";
    fputs(o.c_str(), stdout);
  } else {
    for (auto& is : issues) printf("%s: %s\n", is.error ? "error" : "warning", is.msg.c_str());
    printf("%s: %zu image(s)%s\n", ok ? "ok" : "cannot restart", files.size(), ok ? " can be restarted here" : "");
  }
  fflush(stdout);
  _exit(ok ? 0 : 3);
}

void usage() {
  fputs(
      "usage: ckpt-restart launch [--no-ns] -- CMD [ARGS...]\n"
      "       ckpt-restart restart [--no-ns] IMAGE|GENERATION_DIR|CHECKPOINT_DIR...\n"
      "       ckpt-restart check [--json] IMAGE|DIR...\n"
      "Environment: DMTCP_COORD_HOST, DMTCP_COORD_PORT (coordinator), CKPT_DIR (checkpoint root).\n",
      stderr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  if (strcmp(argv[1], "launch") == 0) cmd_launch(argc - 2, argv + 2);
  if (strcmp(argv[1], "restart") == 0) cmd_restart(argc - 2, argv + 2);
  if (strcmp(argv[1], "check") == 0) cmd_check(argc - 2, argv + 2);
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage();
    return 0;
  }
  usage();
  return 2;
}
