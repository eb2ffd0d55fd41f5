//! The plugin's memory allocator in Wasm: free lists of small blocks in front of the standard allocator.
//!
//! Every call allocates and frees the same handful of small blocks: the host copies each string of the ping into
//! memory it gets from the guest's `cabi_realloc`, and the guest frees them when the call returns. The standard
//! allocator (dlmalloc) spends more time on each of them than the host spends copying the string, so blocks of up to
//! [`MAX_SMALL`] bytes come from one free list per power-of-two size class instead: taking and giving back a block
//! is a pointer swap. Larger or over-aligned blocks go to the standard allocator unchanged.
//!
//! A block freed to a list stays in it for reuse (memory a size class once held is not returned to the standard
//! allocator), so an instance's memory is bounded by the most it held at once, as before; the host's memory cap still
//! applies.
//!
//! Installed as the global allocator only in Wasm without threads (the lists are not synchronised), and only with
//! the `small-alloc` feature, on by default; a plugin that sets its own `#[global_allocator]` turns the feature off.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// The largest block served from the free lists, in bytes.
pub const MAX_SMALL: usize = 256;

/// Size classes 8, 16, 32, 64, 128 and 256 bytes.
const CLASSES: usize = 6;
const MIN_SHIFT: u32 = 3;

/// Bytes carved from the standard allocator at once when a class's list is empty.
const CHUNK: usize = 4096;

/// A freed block holds the pointer to the next free block of its class.
struct FreeBlock {
    next: *mut FreeBlock,
}

/// Free lists of small blocks over the standard allocator.
pub struct SmallAlloc {
    heads: UnsafeCell<[*mut FreeBlock; CLASSES]>,
}

// SAFETY: installed only where the program has one thread (`wasm32` without the `atomics` feature), so the lists
// are never touched concurrently.
unsafe impl Sync for SmallAlloc {}

impl SmallAlloc {
    /// An allocator with empty lists.
    pub const fn new() -> Self {
        SmallAlloc { heads: UnsafeCell::new([ptr::null_mut(); CLASSES]) }
    }

    /// The class of a layout and its block size, or `None` for the standard allocator. A block of a class is aligned
    /// to its size (chunks are aligned to [`MAX_SMALL`]), so any alignment up to the block size is met.
    fn class(layout: Layout) -> Option<(usize, usize)> {
        let need = layout.size().max(layout.align()).max(1 << MIN_SHIFT);
        if need > MAX_SMALL {
            return None;
        }
        let block = need.next_power_of_two();
        Some(((block.trailing_zeros() - MIN_SHIFT) as usize, block))
    }

    /// Fills `class`'s empty list with one chunk of blocks and returns the first one, or null when out of memory.
    ///
    /// # Safety
    /// Only from `alloc`, with the list of `class` empty.
    unsafe fn refill(&self, class: usize, block: usize) -> *mut u8 {
        // SAFETY: CHUNK is non-zero and MAX_SMALL a power of two.
        let chunk = unsafe { System.alloc(Layout::from_size_align_unchecked(CHUNK, MAX_SMALL)) };
        if chunk.is_null() {
            return chunk;
        }
        let heads = self.heads.get();
        // Block 0 is returned; blocks 1.. go on the list, lowest address first.
        for i in (1..CHUNK / block).rev() {
            // SAFETY: `i * block < CHUNK`: inside the chunk, aligned for `FreeBlock` (block >= 8).
            unsafe {
                let free = chunk.add(i * block).cast::<FreeBlock>();
                (*free).next = (*heads)[class];
                (*heads)[class] = free;
            }
        }
        chunk
    }
}

impl Default for SmallAlloc {
    fn default() -> Self {
        SmallAlloc::new()
    }
}

unsafe impl GlobalAlloc for SmallAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some((class, block)) = SmallAlloc::class(layout) else {
            // SAFETY: the caller's layout, passed on.
            return unsafe { System.alloc(layout) };
        };
        let heads = self.heads.get();
        // SAFETY: one thread (see `Sync`); a non-null head is a free block of this class.
        unsafe {
            let head = (*heads)[class];
            if head.is_null() {
                return self.refill(class, block);
            }
            (*heads)[class] = (*head).next;
            head.cast()
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some((class, _)) = SmallAlloc::class(layout) else {
            // SAFETY: a block of this layout came from `System.alloc`.
            return unsafe { System.dealloc(ptr, layout) };
        };
        let heads = self.heads.get();
        // SAFETY: `ptr` is a block of this class (same layout as its allocation), no longer used by the caller.
        unsafe {
            let free = ptr.cast::<FreeBlock>();
            (*free).next = (*heads)[class];
            (*heads)[class] = free;
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` forms a valid layout with `layout.align()`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (SmallAlloc::class(layout), SmallAlloc::class(new_layout)) {
            // Same class: the block already fits.
            (Some((old, _)), Some((new, _))) if old == new => ptr,
            // SAFETY: both layouts belong to the standard allocator.
            (None, None) => unsafe { System.realloc(ptr, layout, new_size) },
            _ => {
                // SAFETY: a fresh block of the new layout, the old contents copied, the old block freed.
                unsafe {
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).expect("valid layout")
    }

    #[test]
    fn small_layouts_get_the_smallest_power_of_two_class_that_fits() {
        assert_eq!(SmallAlloc::class(layout(1, 1)), Some((0, 8)));
        assert_eq!(SmallAlloc::class(layout(9, 1)), Some((1, 16)));
        assert_eq!(SmallAlloc::class(layout(16, 8)), Some((1, 16)));
        assert_eq!(SmallAlloc::class(layout(4, 64)), Some((3, 64)));
        assert_eq!(SmallAlloc::class(layout(256, 4)), Some((5, 256)));
        assert_eq!(SmallAlloc::class(layout(257, 1)), None);
        assert_eq!(SmallAlloc::class(layout(8, 512)), None);
    }

    #[test]
    fn a_freed_block_is_reused_and_live_blocks_never_overlap() {
        let a = SmallAlloc::new();
        unsafe {
            let l = layout(24, 4);
            let blocks: Vec<*mut u8> = (0..300).map(|_| a.alloc(l)).collect();
            assert!(blocks.iter().all(|b| !b.is_null() && (*b as usize).is_multiple_of(32)));
            let mut sorted = blocks.clone();
            sorted.sort();
            assert!(sorted.windows(2).all(|w| w[1] as usize - w[0] as usize >= 32), "blocks overlap");
            for (i, b) in blocks.iter().enumerate() {
                ptr::write_bytes(*b, i as u8, 24);
            }
            let freed = blocks[7];
            a.dealloc(freed, l);
            assert_eq!(a.alloc(l), freed, "the last freed block comes back first");
            assert!(blocks.iter().enumerate().filter(|(i, _)| *i != 7).all(|(i, b)| *b.add(23) == i as u8));
        }
    }

    #[test]
    fn realloc_keeps_the_contents_across_classes_and_to_the_standard_allocator() {
        let a = SmallAlloc::new();
        unsafe {
            let p = a.alloc(layout(5, 1));
            ptr::copy_nonoverlapping(b"hello".as_ptr(), p, 5);
            let p = a.realloc(p, layout(5, 1), 7);
            let p = a.realloc(p, layout(7, 1), 100);
            let p = a.realloc(p, layout(100, 1), 4000);
            assert_eq!(std::slice::from_raw_parts(p, 5), b"hello");
            let p = a.realloc(p, layout(4000, 1), 3);
            assert_eq!(std::slice::from_raw_parts(p, 3), b"hel");
            a.dealloc(p, layout(3, 1));
        }
    }
}
