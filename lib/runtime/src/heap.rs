//! Giving freed heap memory back to the operating system.
//!
//! Loading a model (parsing a multi-megabyte `tokenizer.json`, building vocabularies) makes
//! large short-lived allocations. glibc keeps the freed space in its arenas, so a frontend
//! that has loaded one model would otherwise carry ~13 MB of dead heap for its whole life.
//! Call [`release_free_heap`] after such one-off work.

/// Return the free pages of every malloc arena to the OS (`malloc_trim(0)` on glibc; nothing
/// elsewhere). Returns whether any memory was released.
///
/// ```
/// // Safe to call at any time, from any thread; a no-op where the allocator has no trim.
/// let _released: bool = stator_runtime::heap::release_free_heap();
/// ```
pub fn release_free_heap() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` takes the allocator's own locks and only releases pages of
        // free chunks; it has no preconditions on the caller.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
