// Raw x86_64 system calls and context switching used where libc must not be
// touched: in the snapshot child, in the restorer before TLS is valid, and in
// the restarter after its own libc state has been unmapped. Every function is
// header-only and inline so it lives in whichever binary includes it.
#pragma once

#include <stdint.h>

namespace ckpt::engine::raw {

static inline long sys0(long n) {
  long r;
  asm volatile("syscall" : "=a"(r) : "a"(n) : "rcx", "r11", "memory");
  return r;
}
static inline long sys1(long n, long a) {
  long r;
  asm volatile("syscall" : "=a"(r) : "a"(n), "D"(a) : "rcx", "r11", "memory");
  return r;
}
static inline long sys2(long n, long a, long b) {
  long r;
  asm volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b) : "rcx", "r11", "memory");
  return r;
}
static inline long sys3(long n, long a, long b, long c) {
  long r;
  asm volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}
static inline long sys4(long n, long a, long b, long c, long d) {
  long r;
  register long r10 asm("r10") = d;
  asm volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return r;
}
static inline long sys5(long n, long a, long b, long c, long d, long e) {
  long r;
  register long r10 asm("r10") = d;
  register long r8 asm("r8") = e;
  asm volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8) : "rcx", "r11", "memory");
  return r;
}
static inline long sys6(long n, long a, long b, long c, long d, long e, long f) {
  long r;
  register long r10 asm("r10") = d;
  register long r8 asm("r8") = e;
  register long r9 asm("r9") = f;
  asm volatile("syscall"
               : "=a"(r)
               : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return r;
}

// Minimal jump buffer: callee-saved registers, stack pointer and resume
// address. Unlike glibc's jmp_buf nothing is pointer-mangled, so a buffer
// saved before a checkpoint can be used by a restorer that runs before the
// thread's TLS (and its pointer guard) is valid.
struct JumpBuf {
  uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
};

}  // namespace ckpt::engine::raw

extern "C" {
// Returns 0 when saving, the value passed to ckpt_longjmp when resumed.
int ckpt_setjmp(ckpt::engine::raw::JumpBuf* jb) __attribute__((returns_twice));
[[noreturn]] void ckpt_longjmp(const ckpt::engine::raw::JumpBuf* jb, int value);
}

// Defines `extern "C" long NAME(clone_args*, size_t, void (*fn)(void*), void* arg)`:
// clone3 whose child runs fn(arg) on the stack given in the arguments, with a
// 16-byte aligned stack and no frame to return to (fn must end with SYS_exit
// or never return). The parent gets clone3's result. Use once per binary and
// name; `struct clone_args` comes from <linux/sched.h>.
#define CKPT_DEFINE_CLONE3_RUN(NAME)                                                     \
  extern "C" long NAME(struct clone_args* args, size_t size, void (*fn)(void*), void* arg); \
  asm(".text\n"                                                                          \
      ".globl " #NAME "\n"                                                               \
      ".type " #NAME ",@function\n" #NAME                                                \
      ":\n"                                                                              \
      "  mov %rdx, %r8\n"  /* fn */                                                      \
      "  mov %rcx, %r9\n"  /* arg */                                                     \
      "  mov $435, %eax\n" /* SYS_clone3 */                                              \
      "  syscall\n"                                                                      \
      "  test %rax, %rax\n"                                                              \
      "  jnz 1f\n"                                                                       \
      "  xor %ebp, %ebp\n"                                                               \
      "  mov %r9, %rdi\n"                                                                \
      "  and $-16, %rsp\n"                                                               \
      "  call *%r8\n"                                                                    \
      "  ud2\n"                                                                          \
      "1:\n"                                                                             \
      "  ret\n"                                                                          \
      ".size " #NAME ", .-" #NAME "\n")

// Defines ckpt_setjmp/ckpt_longjmp; include in exactly one translation unit
// per binary with CKPT_RAWSYS_DEFINE set.
#ifdef CKPT_RAWSYS_DEFINE
asm(R"(
  .text
  .globl ckpt_setjmp
  .type ckpt_setjmp,@function
ckpt_setjmp:
  mov %rbx, 0(%rdi)
  mov %rbp, 8(%rdi)
  mov %r12, 16(%rdi)
  mov %r13, 24(%rdi)
  mov %r14, 32(%rdi)
  mov %r15, 40(%rdi)
  lea 8(%rsp), %rdx
  mov %rdx, 48(%rdi)
  mov (%rsp), %rdx
  mov %rdx, 56(%rdi)
  xor %eax, %eax
  ret
  .size ckpt_setjmp, .-ckpt_setjmp

  .globl ckpt_longjmp
  .type ckpt_longjmp,@function
ckpt_longjmp:
  mov %esi, %eax
  mov 0(%rdi), %rbx
  mov 8(%rdi), %rbp
  mov 16(%rdi), %r12
  mov 24(%rdi), %r13
  mov 32(%rdi), %r14
  mov 40(%rdi), %r15
  mov 48(%rdi), %rsp
  jmp *56(%rdi)
  .size ckpt_longjmp, .-ckpt_longjmp
)");
#endif
