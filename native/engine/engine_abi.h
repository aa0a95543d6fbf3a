// Shared definitions between libckpt.so (the preloaded worker library) and
// ckpt-restart (the static restarter/launcher). Everything here is plain old
// data: the restarter hands a RestartInfo to code inside the restored image,
// so both sides must agree on the layout byte for byte without sharing any
// runtime (no STL, no virtual functions, fixed-size fields).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace ckpt::engine {

// Bumped whenever any struct below changes layout.
inline constexpr uint32_t kAbiVersion = 5;
inline constexpr char kProcMagic[8] = {'C', 'K', 'P', 'T', 'P', 'R', 'C', '1'};

// The file descriptor on which a worker keeps its coordinator connection.
// Same number DMTCP uses, so tools that look for it keep working; it is
// excluded from the saved descriptor table.
inline constexpr int kCoordFd = 821;

inline constexpr size_t kMaxPath = 512;
inline constexpr size_t kMaxThreads = 1024;

// Region kinds (how the restarter re-creates a mapping).
enum RegionKind : uint32_t {
  kRegAnon = 0,        // private anonymous (heap, stacks, bss, malloc arenas)
  kRegFilePrivate = 1, // private mapping of a file: re-mapped from the file, dirty pages overlaid
  kRegFileShared = 2,  // shared mapping of a file: re-mapped from the file, contents live in the file
  kRegAnonShared = 3,  // shared anonymous / shmem / memfd: contents saved, re-created as shared
  kRegStack = 4,       // the main thread's [stack] (grows down)
  kRegHeap = 5,        // [heap] (brk area)
};

// Flags for RegionDesc::flags.
enum : uint32_t {
  kRegHasData = 1u << 0,   // data runs follow in the data section
  kRegShared = 1u << 1,    // MAP_SHARED
  kRegFileGone = 1u << 2,  // backing file was deleted at checkpoint time
  kRegDontFork = 1u << 3,  // madvise(MADV_DONTFORK) was in effect
  kRegWipeOnFork = 1u << 4,  // madvise(MADV_WIPEONFORK) was in effect
  kRegHugeAdvised = 1u << 5,    // madvise(MADV_HUGEPAGE) was in effect ("hg")
  kRegNoHugeAdvised = 1u << 6,  // madvise(MADV_NOHUGEPAGE) was in effect ("nh")
};

struct RegionDesc {
  uint64_t start;
  uint64_t end;
  uint64_t file_offset;
  uint32_t prot;   // PROT_* bits
  uint32_t kind;   // RegionKind
  uint32_t flags;  // kReg* bits
  uint32_t pad;
  uint64_t dev;    // st_dev/st_ino of the backing file (file kinds), for change detection
  uint64_t ino;
  uint64_t file_size;   // size at checkpoint (file kinds)
  int64_t file_mtime_ns;
  uint64_t data_bytes;  // bytes of page data saved for this region
  char path[kMaxPath];
};

// Descriptor kinds.
enum FdKind : uint32_t {
  kFdFile = 0,      // regular file or directory: reopen path, seek
  kFdPipe = 1,      // pipe (anonymous): shared by inode across the process tree
  kFdFifo = 2,      // named pipe: reopen path
  kFdChar = 3,      // character device (/dev/null, /dev/zero, /dev/urandom, ...)
  kFdTty = 4,       // terminal: reattached to the restarting terminal
  kFdTcpListen = 5, // listening TCP socket (re-created, SO_REUSEADDR before bind)
  kFdUdp = 6,       // bound UDP socket
  kFdUnixListen = 7,
  kFdTcpConn = 8,   // established TCP: restored as a reset connection
  kFdEpoll = 9,
  kFdEventfd = 10,
  kFdTimerfd = 11,
  kFdSignalfd = 12,
  kFdUnixConn = 13, // connected unix socket to outside: restored as closed
  kFdOther = 14,    // anything else: restored as /dev/null with a warning
};

inline constexpr size_t kMaxEpollTargets = 64;

struct EpollTarget {
  int32_t fd;
  uint32_t events;
  uint64_t data;
};

struct FdDesc {
  int32_t fd;
  uint32_t kind;       // FdKind
  uint32_t flags;      // open flags from fdinfo (O_ACCMODE, O_APPEND, O_NONBLOCK, ...)
  uint32_t cloexec;    // FD_CLOEXEC set
  int64_t offset;      // file position
  uint64_t dev, ino;   // identity (pipes: pipefs inode)
  uint64_t file_size;  // regular files: size at checkpoint
  int64_t file_mtime_ns;
  uint32_t pipe_size;  // F_GETPIPE_SZ
  uint32_t data_len;   // pipe: buffered bytes saved in the data section
  // sockets
  int32_t domain, type, protocol;
  uint32_t addr_len;
  uint8_t addr[128];   // bound address (sockaddr_storage)
  int32_t reuseaddr, reuseport, rcvbuf, sndbuf;
  // eventfd / timerfd / signalfd
  uint64_t count;      // eventfd counter; timerfd ticks
  int32_t clockid;
  int32_t tfd_flags;
  int64_t it_value_ns, it_interval_ns;  // timerfd: remaining time, interval
  uint64_t sigmask;    // signalfd
  uint32_t n_epoll;
  uint32_t pad2;
  EpollTarget epoll[kMaxEpollTargets];
  char path[kMaxPath];
};

// A saved kernel sigaction (the raw rt_sigaction layout on x86_64).
struct KSigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

// Per-process header. All addresses are in the process's own address space.
struct ProcHeader {
  char magic[8];
  uint32_t abi;
  uint32_t header_size;
  int32_t pid, ppid, pgid, sid;
  int32_t n_regions, n_fds, n_threads;
  uint32_t generation;
  // DMTCP identity (UniquePid) and computation group.
  uint64_t upid_hostid, upid_time;
  int32_t upid_pid;
  uint32_t upid_gen;
  uint64_t comp_hostid, comp_time;
  int32_t comp_pid;
  uint32_t comp_gen;
  uint32_t num_peers;
  int32_t ckpt_interval;
  char progname[256];
  char hostname[256];
  char exe[kMaxPath];
  char cwd[kMaxPath];
  // Host facts the restarter must match.
  char kernel_release[128];
  uint64_t xcr0;
  uint64_t hwcap, hwcap2;
  uint64_t vvar_start, vvar_end, vclock_start, vclock_end, vdso_start, vdso_end;
  uint8_t vdso_hash[32];  // first 32 bytes of a simple digest of the vDSO text
  uint64_t vdso_size;
  // mm fields for PR_SET_MM_MAP.
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
  uint64_t auxv[64];
  uint32_t auxv_size;
  uint32_t umask;
  // Entry point inside the image that the restarter jumps to.
  uint64_t restore_entry;
  // Total bytes of region data (for progress and sizing).
  uint64_t total_data;
};

// Handed by the restarter to restore_entry (lives in memory the restarter
// mapped outside every image region; freed by the restored checkpoint thread).
struct RestartInfo {
  uint64_t magic;               // kRestartMagic
  uint64_t self_base, self_len; // restarter executable mappings (to unmap)
  uint64_t heap_base, heap_len; // restarter brk heap (to unmap)
  uint64_t scratch_base, scratch_len;  // this struct + temp stacks (unmapped later)
  uint64_t stacks_base;         // temp stacks: kTempStack bytes per thread slot
  int32_t image_fd;             // closed by the restored process
  int32_t exe_fd;               // original executable, for PR_SET_MM_MAP exe_fd (-1: none)
  int32_t set_tid_ok;           // 1: threads get their original TIDs
  int32_t coord_port;
  char coord_host[256];
  char ckpt_dir[kMaxPath];
  int32_t ckpt_interval;        // -1 unchanged
  uint32_t pad;
  uint64_t mm_map[13];          // struct prctl_mm_map prefix (filled by the restarter)
  // Every mapping of the restarter still present when it jumps into the
  // image (executable, heap, buffers), unmapped by restore_entry.
  uint32_t n_unmap;
  uint32_t pad2;
  uint64_t unmap[128][2];
};
inline constexpr uint64_t kRestartMagic = 0x43'4b'50'54'52'53'54'31ull;
inline constexpr size_t kTempStack = 64 * 1024;

}  // namespace ckpt::engine
