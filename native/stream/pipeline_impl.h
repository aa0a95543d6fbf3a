// Implementation of stream::OrderedPipeline (a template, so it lives in a
// header). Included from stream.h only.
#pragma once

#include <exception>
#include <map>

namespace ckpt::stream {

template <class Job>
struct OrderedPipeline<Job>::State {
  unsigned threads = 0;
  size_t max_in_flight = 1;
  Work work;
  Sink sink;

  mutable std::mutex mu;
  std::condition_variable cv_free;     // a job slot became free
  std::condition_variable cv_work;     // a job is waiting for a worker
  std::condition_variable cv_deliver;  // a job finished work
  std::condition_variable cv_idle;     // everything submitted was delivered

  std::vector<std::unique_ptr<Job>> free_jobs;
  size_t allocated = 0;
  std::deque<std::pair<uint64_t, std::unique_ptr<Job>>> pending;
  std::map<uint64_t, std::unique_ptr<Job>> done;
  uint64_t next_submit = 0;
  uint64_t next_deliver = 0;
  bool stopping = false;
  std::exception_ptr error;
  std::vector<std::thread> workers;
  std::thread deliverer;

  void fail(std::exception_ptr e) {
    // Caller holds mu. Only the first error is kept: it is the one that
    // explains what went wrong; later ones are consequences.
    if (!error) error = e;
  }

  void worker_loop(unsigned id) {
    std::unique_lock lk(mu);
    for (;;) {
      cv_work.wait(lk, [&] { return stopping || !pending.empty(); });
      if (pending.empty()) return;
      auto item = std::move(pending.front());
      pending.pop_front();
      bool skip = static_cast<bool>(error);
      lk.unlock();
      if (!skip) {
        try {
          work(*item.second, id);
        } catch (...) {
          lk.lock();
          fail(std::current_exception());
          lk.unlock();
        }
      }
      lk.lock();
      done.emplace(item.first, std::move(item.second));
      cv_deliver.notify_one();
    }
  }

  void deliver_loop() {
    std::unique_lock lk(mu);
    for (;;) {
      cv_deliver.wait(lk, [&] {
        return (stopping && next_deliver == next_submit) || done.count(next_deliver) != 0;
      });
      auto it = done.find(next_deliver);
      if (it == done.end()) return;
      std::unique_ptr<Job> job = std::move(it->second);
      done.erase(it);
      bool skip = static_cast<bool>(error);
      lk.unlock();
      if (!skip) {
        try {
          sink(*job);
        } catch (...) {
          lk.lock();
          fail(std::current_exception());
          lk.unlock();
        }
      }
      lk.lock();
      next_deliver++;
      free_jobs.push_back(std::move(job));
      cv_free.notify_one();
      if (next_deliver == next_submit) cv_idle.notify_all();
    }
  }
};

template <class Job>
OrderedPipeline<Job>::OrderedPipeline(unsigned threads, size_t max_in_flight, Work work, Sink sink)
    : st_(std::make_shared<State>()) {
  st_->threads = threads;
  st_->max_in_flight = max_in_flight == 0 ? 1 : max_in_flight;
  st_->work = std::move(work);
  st_->sink = std::move(sink);
  if (threads > 0) {
    for (unsigned i = 0; i < threads; i++) st_->workers.emplace_back([s = st_.get(), i] { s->worker_loop(i); });
    st_->deliverer = std::thread([s = st_.get()] { s->deliver_loop(); });
  }
}

template <class Job>
OrderedPipeline<Job>::~OrderedPipeline() {
  {
    std::lock_guard lk(st_->mu);
    st_->stopping = true;
  }
  st_->cv_work.notify_all();
  st_->cv_deliver.notify_all();
  for (auto& t : st_->workers) t.join();
  if (st_->deliverer.joinable()) st_->deliverer.join();
}

template <class Job>
std::unique_ptr<Job> OrderedPipeline<Job>::acquire() {
  std::unique_lock lk(st_->mu);
  st_->cv_free.wait(lk, [&] {
    return st_->error || !st_->free_jobs.empty() || st_->allocated < st_->max_in_flight;
  });
  if (st_->error) std::rethrow_exception(st_->error);
  if (!st_->free_jobs.empty()) {
    auto j = std::move(st_->free_jobs.back());
    st_->free_jobs.pop_back();
    return j;
  }
  st_->allocated++;
  return std::make_unique<Job>();
}

template <class Job>
void OrderedPipeline<Job>::submit(std::unique_ptr<Job> job) {
  if (st_->threads == 0) {
    // Synchronous mode: no threads exist; work and deliver right here.
    std::exception_ptr err;
    {
      std::lock_guard lk(st_->mu);
      err = st_->error;
    }
    if (!err) {
      try {
        st_->work(*job, 0);
        st_->sink(*job);
      } catch (...) {
        err = std::current_exception();
      }
    }
    std::lock_guard lk(st_->mu);
    if (err) st_->fail(err);
    st_->free_jobs.push_back(std::move(job));
    if (st_->error) std::rethrow_exception(st_->error);
    return;
  }
  std::lock_guard lk(st_->mu);
  st_->pending.emplace_back(st_->next_submit++, std::move(job));
  st_->cv_work.notify_one();
}

template <class Job>
void OrderedPipeline<Job>::drain() {
  std::unique_lock lk(st_->mu);
  st_->cv_idle.wait(lk, [&] { return st_->next_deliver == st_->next_submit || st_->threads == 0; });
  if (st_->error) std::rethrow_exception(st_->error);
}

template <class Job>
size_t OrderedPipeline<Job>::in_flight() const {
  std::lock_guard lk(st_->mu);
  return st_->next_submit - st_->next_deliver;
}

}  // namespace ckpt::stream
