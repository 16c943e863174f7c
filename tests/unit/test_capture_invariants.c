/* The capture thread's rules, checked: while it captures it never allocates and never
 * touches a file (this binary interposes malloc, calloc, realloc, the aligned
 * allocators, open*, creat, fopen, write*, fwrite, fputs, fsync and fdatasync and counts
 * the calls made by the thread named "capture"), and its ring is prefaulted and locked in
 * RAM (VmLck grows by the ring), with a clear warning when the limit does not allow it.
 *
 * Under AddressSanitizer the allocator belongs to ASan: allocations are seen through its
 * malloc hook instead of by interposition; and ASan turns mlock into a no-op, so the
 * locking cases run in the plain build only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audio/capture.h"
#include "audio/source.h"
#include "capture_waits.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* ---- the detector ------------------------------------------------------------------ */

static _Atomic int armed;
static _Atomic int flagged;
static _Atomic(const char *) first_call;

static int on_capture_thread(void)
{
    char name[16] = {0};
    if (syscall(SYS_prctl, PR_GET_NAME, name, 0, 0, 0) != 0)
        return 0;
    return strcmp(name, "capture") == 0;
}

static void note(const char *what)
{
    if (atomic_load_explicit(&armed, memory_order_relaxed) && on_capture_thread()) {
        const char *none = NULL;
        atomic_compare_exchange_strong(&first_call, &none, what);
        atomic_fetch_add(&flagged, 1);
    }
}

#ifdef UNDER_ASAN
/* from sanitizer/allocator_interface.h (not installed with every compiler) */
int __sanitizer_install_malloc_and_free_hooks(void (*m)(const volatile void *, size_t),
                                              void (*f)(const volatile void *));
static void asan_malloc_hook(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    note("malloc (ASan hook)");
}
static void asan_free_hook(const volatile void *p) { (void)p; }
static void install_alloc_detector(void)
{
    __sanitizer_install_malloc_and_free_hooks(asan_malloc_hook, asan_free_hook);
}
#else
/* glibc's own entry points: forwarding needs no dlsym (which may allocate itself) */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n) { note("malloc"); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { note("calloc"); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { note("realloc"); return __libc_realloc(p, n); }
void *memalign(size_t al, size_t n) { note("memalign"); return __libc_memalign(al, n); }
void *aligned_alloc(size_t al, size_t n) { note("aligned_alloc"); return __libc_memalign(al, n); }
int posix_memalign(void **out, size_t al, size_t n)
{
    note("posix_memalign");
    void *p = __libc_memalign(al, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}
static void install_alloc_detector(void) {}
#endif

/* Files: straight to the kernel (or to the next definition for stdio). */
static int mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & __O_TMPFILE) == __O_TMPFILE ? va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    int mode = mode_arg(flags, ap);
    va_end(ap);
    note("open");
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    int mode = mode_arg(flags, ap);
    va_end(ap);
    note("open64");
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

int openat(int dir, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    int mode = mode_arg(flags, ap);
    va_end(ap);
    note("openat");
    return (int)syscall(SYS_openat, dir, path, flags, mode);
}

int openat64(int dir, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    int mode = mode_arg(flags, ap);
    va_end(ap);
    note("openat64");
    return (int)syscall(SYS_openat, dir, path, flags, mode);
}

int creat(const char *path, mode_t mode)
{
    note("creat");
    return (int)syscall(SYS_openat, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    note("write");
    return syscall(SYS_write, fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    note("pwrite");
    return syscall(SYS_pwrite64, fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    note("pwrite64");
    return syscall(SYS_pwrite64, fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    note("writev");
    return syscall(SYS_writev, fd, iov, cnt);
}

int fsync(int fd)
{
    note("fsync");
    return (int)syscall(SYS_fsync, fd);
}

int fdatasync(int fd)
{
    note("fdatasync");
    return (int)syscall(SYS_fdatasync, fd);
}

#define NEXT(ret, name, params)                                     \
    static ret(*next_##name) params;                                \
    if (!next_##name)                                               \
        *(void **)&next_##name = dlsym(RTLD_NEXT, #name);

FILE *fopen(const char *path, const char *mode)
{
    note("fopen");
    NEXT(FILE *, fopen, (const char *, const char *))
    return next_fopen(path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
    note("fopen64");
    NEXT(FILE *, fopen64, (const char *, const char *))
    return next_fopen64(path, mode);
}

size_t fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    note("fwrite");
    NEXT(size_t, fwrite, (const void *, size_t, size_t, FILE *))
    return next_fwrite(p, size, n, f);
}

int fputs(const char *s, FILE *f)
{
    note("fputs");
    NEXT(int, fputs, (const char *, FILE *))
    return next_fputs(s, f);
}

/* ---- helpers ----------------------------------------------------------------------- */

/* kB of locked memory of this process (VmLck in /proc/self/status). */
static long locked_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static void *misbehave(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "capture", 0, 0, 0);
    void *volatile p = malloc(64);   /* volatile: the pair must not be optimized away */
    free(p);
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) {
        ssize_t w = write(fd, "x", 1);   /* the call is what counts */
        (void)w;
        close(fd);
    }
    return NULL;
}

/* ---- cases ------------------------------------------------------------------------- */

/* The detector sees what a thread called "capture" does (else the next case proves
 * nothing). */
static void test_detector_sees_a_misbehaving_thread(void **state)
{
    (void)state;
    install_alloc_detector();
    atomic_store(&flagged, 0);
    atomic_store(&armed, 1);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, misbehave, NULL), 0);
    pthread_join(t, NULL);
    atomic_store(&armed, 0);
    /* malloc, open, write */
    if (atomic_load(&flagged) < 3)
        fail_msg("the detector saw %d of 3 calls (first: %s)", atomic_load(&flagged),
                 atomic_load(&first_call) ? atomic_load(&first_call) : "none");
}

static void test_capture_thread_neither_allocates_nor_touches_files(void **state)
{
    (void)state;
    install_alloc_detector();
    struct audio_source *s;
    struct audio_format want = {SF_S32_LE, 48000, 2};
    assert_int_equal(audio_source_open_tone(&s, &want), 0);
    /* short timing windows: the check runs several times while armed */
    struct capture_config cfg = {.ring_seconds = 1, .meter_rate = 50, .timing_window_ms = 200};
    struct capture *c;
    assert_int_equal(capture_start(&c, s, &cfg), 0);
    wait_frames(c, 4800, 10000);   /* running, and named */
    atomic_store(&flagged, 0);
    atomic_store(&first_call, NULL);
    atomic_store(&armed, 1);
    uint64_t from = audio_ring_write_pos(capture_ring(c));
    wait_frames(c, from + 48000, 20000);   /* a second of audio, five timing windows */
    atomic_store(&armed, 0);
    struct capture_stats st;
    capture_get_stats(c, &st);
    capture_stop(c);
    const char *what = atomic_load(&first_call);
    if (atomic_load(&flagged))
        fail_msg("the capture thread made %d forbidden calls, the first: %s",
                 atomic_load(&flagged), what ? what : "?");
    assert_true(st.measured_rate > 0);   /* the timing check did run */
}

/* AddressSanitizer replaces mlock by a no-op that reports success: the locking is
 * checked by the plain build. */
static void skip_under_asan(void)
{
#ifdef UNDER_ASAN
    printf("AddressSanitizer ignores mlock: checked in the plain build\n");
    skip();
#endif
}

static int may_lock(size_t bytes)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) == 0 &&
        (d[CAP_IPC_LOCK / 32].effective & (1u << (CAP_IPC_LOCK % 32))))
        return 1;
    struct rlimit rl;
    return getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
           (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= bytes + 65536);
}

static void test_ring_is_locked(void **state)
{
    (void)state;
    skip_under_asan();
    if (!may_lock(768000)) {
        printf("RLIMIT_MEMLOCK is below 0.8 MB here: the warning case covers it\n");
        skip();
    }
    long before = locked_kb();
    if (before < 0)
        fail_msg("no VmLck in /proc/self/status");
    struct audio_source *s;
    struct audio_format want = {SF_S32_LE, 48000, 2};
    assert_int_equal(audio_source_open_tone(&s, &want), 0);
    struct capture_config cfg = {.ring_seconds = 2};   /* 768000 bytes */
    struct capture *c;
    assert_int_equal(capture_start(&c, s, &cfg), 0);
    long during = locked_kb();
    capture_stop(c);
    long after = locked_kb();
    printf("VmLck: %ld kB before, %ld kB while capturing, %ld kB after\n", before, during,
           after);
    assert_true(during - before >= 768000 / 1024);
    assert_true(after <= before);
}

/* Without CAP_IPC_LOCK and with RLIMIT_MEMLOCK at 64 kB: a warning that says so, and
 * the capture runs anyway. In a child, which drops the capability for good. */
static void test_lock_refused_is_a_warning(void **state)
{
    (void)state;
    skip_under_asan();
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], STDERR_FILENO);
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2];
        if (syscall(SYS_capget, &h, d) == 0) {
            d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
            d[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
            syscall(SYS_capset, &h, d);
        }
        struct rlimit rl = {65536, 65536};
        setrlimit(RLIMIT_MEMLOCK, &rl);
        struct audio_source *s;
        struct audio_format want = {SF_S32_LE, 48000, 2};
        if (audio_source_open_tone(&s, &want) < 0)
            _exit(2);
        struct capture_config cfg = {.ring_seconds = 2};
        struct capture *c;
        if (capture_start(&c, s, &cfg) < 0)
            _exit(3);
        int64_t end = now_ms() + 10000;
        while (audio_ring_write_pos(capture_ring(c)) < 4800 && now_ms() < end)
            audio_ring_wait(capture_ring(c), audio_ring_write_pos(capture_ring(c)), 100);
        int ok = audio_ring_write_pos(capture_ring(c)) >= 4800;
        capture_stop(c);
        _exit(ok ? 0 : 4);
    }
    close(pfd[1]);
    char out[4096] = {0};
    size_t got = 0;
    ssize_t n;
    while (got < sizeof out - 1 && (n = read(pfd[0], out + got, sizeof out - 1 - got)) > 0)
        got += (size_t)n;
    close(pfd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    printf("child said: %s", out);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);   /* captured anyway */
    assert_non_null(strstr(out, "cannot lock the"));
    assert_non_null(strstr(out, "RLIMIT_MEMLOCK is 0.1 MiB"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detector_sees_a_misbehaving_thread),
        cmocka_unit_test(test_capture_thread_neither_allocates_nor_touches_files),
        cmocka_unit_test(test_ring_is_locked),
        cmocka_unit_test(test_lock_refused_is_a_warning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
