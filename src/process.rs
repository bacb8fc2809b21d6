//! Settings of the server process itself, made once at start.

/// Keeps large buffers from pinning memory after they are freed.
///
/// glibc raises its mmap threshold each time it frees a large mmapped
/// block, up to 32 MiB: after the first large WebSocket frame, later
/// ones of the same size come from the heap, whose freed space is rarely
/// given back. Pinning the threshold at 128 KiB (glibc's starting value)
/// keeps every large buffer in a mapping of its own, returned to the system
/// the moment it is freed.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes glibc's allocator parameters; it is
        // called once, at start, before any other thread allocates.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
        if ok != 1 {
            eprintln!("causerie: could not set the allocator's mmap threshold");
        }
    }
}
