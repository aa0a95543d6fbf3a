#include "coordinator/file_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ckpt::coordinator::detail {

namespace {
std::string dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}
std::string fail(const char* step, const std::string& path, int err) {
  return std::string(step) + " " + path + ": " + std::strerror(err);
}
}  // namespace

std::string write_file_atomic(const std::string& path, const std::string& content, mode_t mode) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail("cannot create", tmp, errno);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      unlink(tmp.c_str());
      return fail("cannot write", tmp, e);
    }
    off += size_t(n);
  }
  // The mode is applied explicitly: open()'s mode is filtered by the umask,
  // and the restart script must be executable by its owner regardless.
  if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
    int e = errno;
    close(fd);
    unlink(tmp.c_str());
    return fail("cannot finish", tmp, e);
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    unlink(tmp.c_str());
    return fail("cannot rename to", path, e);
  }
  // Make the rename itself durable.
  int dfd = open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return "";
}

std::string replace_symlink(const std::string& link_path, const std::string& target) {
  std::string tmp = link_path + ".tmp." + std::to_string(getpid());
  unlink(tmp.c_str());
  if (symlink(target.c_str(), tmp.c_str()) != 0) return fail("cannot create symlink", tmp, errno);
  if (rename(tmp.c_str(), link_path.c_str()) != 0) {
    int e = errno;
    unlink(tmp.c_str());
    return fail("cannot rename symlink to", link_path, e);
  }
  return "";
}

FileWriter::FileWriter() : thread_([this] { run(); }) {}

FileWriter::~FileWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void FileWriter::submit(FileJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void FileWriter::drain() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [this] { return jobs_.empty() && !busy_; });
}

void FileWriter::run() {
  for (;;) {
    FileJob job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stop_ and nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
      busy_ = true;
    }
    std::string err;
    if (job.kind == FileJob::Kind::Unlink) {
      if (unlink(job.path.c_str()) != 0 && errno != ENOENT) err = fail("cannot remove", job.path, errno);
    } else {
      err = write_file_atomic(job.path, job.content, job.mode);
      if (err.empty() && !job.symlink_path.empty()) err = replace_symlink(job.symlink_path, job.symlink_target);
    }
    if (job.done) job.done(err);
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ = false;
      if (jobs_.empty()) idle_cv_.notify_all();
    }
  }
}

}  // namespace ckpt::coordinator::detail
