// Off-loop file output. The coordinator's loop must never wait for a disk
// (a restart script on NFS, a KV dump of a few MB); it hands complete file
// contents to this single background thread, which writes them atomically
// (temp name, fsync, rename) in submission order and reports back through a
// callback that the owner posts to its loop.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace ckpt::coordinator::detail {

struct FileJob {
  enum class Kind { Write, Unlink } kind = Kind::Write;
  std::string path;
  std::string content;
  mode_t mode = 0644;
  // After the write: (re)point this symlink at `symlink_target` (relative),
  // atomically (temp link + rename).
  std::string symlink_path;
  std::string symlink_target;
  // Runs on the writer thread when the job is done; `error` is "" on success.
  std::function<void(const std::string& error)> done;
};

class FileWriter {
 public:
  FileWriter();
  ~FileWriter();  // finishes every queued job, then joins
  void submit(FileJob job);
  // Blocks until every job submitted so far is done (used at exit).
  void drain();

 private:
  void run();
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<FileJob> jobs_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;
};

// The atomic write itself (also used directly by tests and the executable).
// Returns "" on success or a message naming the failing step.
std::string write_file_atomic(const std::string& path, const std::string& content, mode_t mode);
std::string replace_symlink(const std::string& link_path, const std::string& target);

}  // namespace ckpt::coordinator::detail
