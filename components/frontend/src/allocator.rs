//! glibc allocator settings for the frontend process.
//!
//! glibc raises its mmap threshold each time a large block is freed, so after start-up
//! (parsing `tokenizer.json`, building the vocabulary) every later large allocation comes from
//! the heap, and the ~15 MB of freed start-up buffers stay resident for the life of the
//! process. Glibc also gives each thread that allocates its own arena, and per-thread free
//! lists grow with concurrent requests. A fixed threshold keeps large blocks in `mmap`
//! (returned to the kernel when freed) and two arenas bound the per-thread growth: measured
//! with the echo load bench, idle RSS falls from ~40 MB to ~25 MB and RSS after c = 64 from
//! ~50 MB to ~33 MB, with no extra system calls per request (`docs/benchmarks/frontend.md`).
//! Glibc's own `MALLOC_ARENA_MAX` / `MALLOC_MMAP_THRESHOLD_` variables still win when set.

/// Blocks at least this large are mapped, not carved from the heap (glibc's default start).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Arenas shared by all threads (the HTTP and request-plane work is on two tokio workers).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENA_MAX: libc::c_int = 2;

/// Applies the settings; call first thing in `main`, before threads start.
pub(crate) fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: `mallopt` only changes allocator parameters; any value is accepted.
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        }
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: as above.
            unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX) };
        }
    }
}
