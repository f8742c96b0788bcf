// Opt-in diagnostics for a native crash (OPEN_AUTOGLM_CRASH_TRACE=1): on SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGABRT
// the faulting thread writes the signal and a backtrace to stderr, then the default action runs (the process still
// dies with the same signal). For CI logs: a crash in a child process otherwise leaves nothing but its exit signal.
#include "common.h"

#include <cstdint>
#include <cstdio>

#if defined(__GLIBC__) || defined(__APPLE__)
#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

namespace {

void write_str(const char *s) {
  ssize_t r = write(2, s, strlen(s));
  (void)r;
}

void on_fatal(int sig, siginfo_t *info, void *) {
  // Async-signal-safe only: write, backtrace_symbols_fd (glibc's is safe once loaded; preloaded below).
  char line[160];
  const char *name = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : sig == SIGILL ? "SIGILL" : sig == SIGFPE ? "SIGFPE" : "SIGABRT";
  char addr[32];
  uintptr_t a = (uintptr_t)(info ? info->si_addr : nullptr);
  int k = 0;
  addr[k++] = '0', addr[k++] = 'x';
  for (int shift = (int)sizeof(uintptr_t) * 8 - 4; shift >= 0; shift -= 4) addr[k++] = "0123456789abcdef"[(a >> shift) & 15];
  addr[k] = 0;
  line[0] = 0;
  strcat(line, "\nopen-autoglm: fatal ");
  strcat(line, name);
  strcat(line, " at address ");
  strcat(line, addr);
  strcat(line, "; native backtrace:\n");
  write_str(line);
  void *frames[64];
  const int n = backtrace(frames, 64);
  backtrace_symbols_fd(frames, n, 2);
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void aglm_crash_trace_init() {
  static std::atomic<bool> done{false};
  const char *on = std::getenv("OPEN_AUTOGLM_CRASH_TRACE");
  if (!on || !*on || strcmp(on, "0") == 0 || done.exchange(true)) return;
  void *warm[1];
  backtrace(warm, 1); // loads libgcc's unwinder now, not inside the handler
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fatal;
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) sigaction(sig, &sa, nullptr);
}
#else
void aglm_crash_trace_init() {}
#endif
