// The thread policy: how many threads one kernel call uses, for its OpenMP loops and for the BLAS/LAPACK calls it
// makes (through OpenBLAS's per-calling-thread setting, so the process-wide count that numpy shares is never
// touched).
//
// Measured on a 2-core VM while two other processes kept both cores busy (float32, C = 100): LogME at 1,000 x
// 1,280 took 5.05 / 1.26 / 0.52 s with both threads against 0.41 / 0.28 / 0.58 s with one; SFDA 2.5 s against
// 0.56 s; SFDA at 20,000 x 1,024 5.1-7.0 s against 1.6-8.2 s. Threads that hand work over (OpenBLAS's level-2
// heavy eigensolver, our row-block loops) spin-wait for a partner that the scheduler has given to another process.
// On a quiet machine both threads pay off only on large calls (LogME 3.25 s against 3.78 s at 50,000 x 2,048).
// So: one thread for small calls (N * D below kSmallCallElements), and for the rest as many threads as there are
// cores that no other process is running on (at least one), read from /proc at the start of the call (Linux;
// elsewhere all threads). PEDRANK_THREADS or _core.set_threads(n) fixes the count; PEDRANK_EIG_THREADS still
// fixes the eigensolvers' own count.
#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#ifdef __linux__
#include <dirent.h>
#include <sys/sysinfo.h>
#endif

#include "blas.hpp"
#include "common.hpp"

namespace pedrank {

// Below this many feature entries a call runs on one thread: the whole call is then ~10 ms or less on one core,
// and a hand-over to a second thread costs up to seconds when that core is busy.
inline constexpr double kSmallCallElements = 2e6;

// Threads set by PEDRANK_THREADS or _core.set_threads (0 = the policy above).
inline std::atomic<int>& thread_override() {
  static std::atomic<int> value{[] {
    const char* env = std::getenv("PEDRANK_THREADS");
    return env ? std::max(std::atoi(env), 0) : 0;
  }()};
  return value;
}

// Runnable tasks of other processes right now (/proc/loadavg's running count minus this process's running
// threads), or 0 when that cannot be read or does not describe our CPUs (a container on a larger machine).
inline int busy_cores_elsewhere(int our_cpus) {
#ifdef __linux__
  if (get_nprocs() > 2 * our_cpus) return 0;  // the load of a machine much larger than our share says nothing
  std::FILE* file = std::fopen("/proc/loadavg", "r");
  if (!file) return 0;
  double one = 0, five = 0, fifteen = 0;
  int running = 0, total = 0;
  const int read = std::fscanf(file, "%lf %lf %lf %d/%d", &one, &five, &fifteen, &running, &total);
  std::fclose(file);
  if (read != 5) return 0;
  int ours = 0;
  if (DIR* tasks = opendir("/proc/self/task")) {
    while (const dirent* entry = readdir(tasks)) {
      if (entry->d_name[0] == '.') continue;
      const std::string path = std::string("/proc/self/task/") + entry->d_name + "/stat";
      if (std::FILE* stat = std::fopen(path.c_str(), "r")) {
        char buffer[512];
        const std::size_t size = std::fread(buffer, 1, sizeof(buffer) - 1, stat);
        std::fclose(stat);
        buffer[size] = '\0';
        const std::string text(buffer);
        const std::size_t close = text.rfind(')');  // the state follows the command name in parentheses
        if (close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'R') ++ours;
      }
    }
    closedir(tasks);
  }
  return std::max(0, running - std::max(ours, 1));
#else
  (void)our_cpus;
  return 0;
#endif
}

// Threads for a call on n x d features.
inline int call_threads(Index n, Index d) {
  const int fixed = thread_override().load();
#ifdef _OPENMP
  const int cpus = std::max(1, omp_get_max_threads());
#else
  const int cpus = 1;
#endif
  if (fixed > 0) return fixed;
  if (cpus <= 1 || static_cast<double>(n) * static_cast<double>(d) < kSmallCallElements) return 1;
  return std::clamp(cpus - busy_cores_elsewhere(cpus), 1, cpus);
}

// While alive: this thread's kernel call uses `threads` threads for our loops (call_budget) and for OpenBLAS.
class CallThreads {
 public:
  explicit CallThreads(int threads) : saved_budget_(call_budget()) {
    call_budget() = threads;
    Linalg& la = linalg();
    if (la.set_threads_local) previous_blas_ = la.set_threads_local(threads);
  }
  CallThreads(Index n, Index d) : CallThreads(call_threads(n, d)) {}
  ~CallThreads() {
    call_budget() = saved_budget_;
    if (previous_blas_ > 0) linalg().set_threads_local(previous_blas_);
  }
  CallThreads(const CallThreads&) = delete;
  CallThreads& operator=(const CallThreads&) = delete;

 private:
  int saved_budget_;
  int previous_blas_ = -1;
};

}  // namespace pedrank
