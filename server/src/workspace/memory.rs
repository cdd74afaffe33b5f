//! Giving freed memory back to the system. A parse of a long file allocates many small
//! tree nodes among longer-lived allocations; once the tree is dropped, glibc keeps the
//! freed pages in its arenas (it only returns the top of a heap), so a long-running
//! server would hold the peak of every parse.

/// Texts at least this long get their parse's pages returned afterwards; below it the
/// pages are few and the trim (a walk over the heap) would cost more than it frees.
const RELEASE_AFTER_BYTES: usize = 64 * 1024;

/// After work on a text of `len` bytes: returns the free pages of every malloc arena to
/// the system when the text was long.
pub fn release_after(len: usize) {
    if len >= RELEASE_AFTER_BYTES {
        trim();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only returns unused pages; it is thread-safe in glibc.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
