//! Turns a would-be deadlock into a clear panic.
//!
//! Every public operation that runs code the map does not control (a user callback, or `Eq`,
//! `Clone`, `Debug` or `Drop` of a key or value) while part of the map is locked first calls
//! [`Enter::new`]. It records, in a thread-local stack, which map this thread is inside and
//! through which method. If that code calls back into the same map, the inner call finds the map
//! already on the stack and panics with a message naming both methods, before it touches a lock
//! that this very thread may hold. Unwinding then releases the outer lock as usual.
//!
//! Cost: one thread-local access, one compare per map already on the stack (almost always
//! none), two stores.

use crate::sync::{Cell, thread_local};
use std::marker::PhantomData;

/// How many maps a thread can be inside at once (map A's callback calls map B, whose callback
/// calls map C, ...). Nesting deeper than this panics with its own message.
const MAX_DEPTH: usize = 32;

#[derive(Clone, Copy)]
struct Frame {
    /// Address that identifies the map (stable while the operation borrows it).
    map: usize,
    /// The public method the map is running, e.g. `"ShardedMap::update"`.
    method: &'static str,
}

struct Stack {
    depth: Cell<usize>,
    frames: [Cell<Frame>; MAX_DEPTH],
}

impl Stack {
    const fn new() -> Self {
        const EMPTY: Frame = Frame { map: 0, method: "" };
        Self {
            depth: Cell::new(0),
            frames: [const { Cell::new(EMPTY) }; MAX_DEPTH],
        }
    }
}

thread_local! {
    static STACK: Stack = const { Stack::new() };
}

/// Proof that this thread is inside one operation of one map; leaving it pops the record.
///
/// Not `Send`: it must be dropped on the thread that created it.
#[must_use = "the map is only marked as entered while the Enter value lives"]
pub(crate) struct Enter {
    _not_send: PhantomData<*const ()>,
}

impl Enter {
    /// Marks `map` (any address unique to the map while it is borrowed) as entered through
    /// `method`.
    ///
    /// # Panics
    /// If this thread is already inside `map`: the caller was reached from code that `map` runs
    /// with a lock held, and going on would deadlock.
    #[inline]
    pub(crate) fn new(map: usize, method: &'static str) -> Self {
        STACK.with(|stack| {
            let depth = stack.depth.get();
            // Almost always this thread is inside no map: nothing to compare. The nested case is
            // out of line so that this closure stays small enough for `with`, and with it the
            // thread-local access, to inline into every map method (out of line it was a call,
            // an indirect call to the TLS accessor and spills: about 30 instructions per get).
            if depth == 0 {
                stack.frames[0].set(Frame { map, method });
                stack.depth.set(1);
            } else {
                push_nested(stack, depth, map, method);
            }
        });
        Enter {
            _not_send: PhantomData,
        }
    }
}

/// [`Enter::new`] when this thread is already inside some map: check each, then push.
#[inline(never)]
fn push_nested(stack: &Stack, depth: usize, map: usize, method: &'static str) {
    for frame in &stack.frames[..depth] {
        let outer = frame.get();
        if outer.map == map {
            reentered(method, outer.method);
        }
    }
    if depth == MAX_DEPTH {
        too_deep(method);
    }
    stack.frames[depth].set(Frame { map, method });
    stack.depth.set(depth + 1);
}

impl Drop for Enter {
    #[inline]
    fn drop(&mut self) {
        // Enters are scoped values on one thread, so they leave in the reverse order they came.
        STACK.with(|stack| stack.depth.set(stack.depth.get() - 1));
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn reentered(method: &str, outer: &str) -> ! {
    panic!(
        "lanemap: `{method}` was called on a map from code running inside `{outer}` on the same \
         map. Callbacks (and Eq, Clone, Debug and Drop of keys and values) run while part of the \
         map is locked, so this call would deadlock. Return what you need from the callback and \
         make the second call after `{outer}` has returned."
    )
}

#[cold]
#[inline(never)]
fn too_deep(method: &str) -> ! {
    panic!(
        "lanemap: `{method}` was called with {MAX_DEPTH} map operations already running on this \
         thread, each inside a callback of the one before; nest fewer map calls inside callbacks."
    )
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Enter;

    #[test]
    fn different_maps_nest() {
        let _a = Enter::new(1, "A::update");
        let _b = Enter::new(2, "B::get_with");
    }

    #[test]
    fn leaving_pops_the_frame() {
        drop(Enter::new(1, "A::update"));
        let _again = Enter::new(1, "A::update");
    }

    #[test]
    #[should_panic(
        expected = "`A::insert` was called on a map from code running inside `A::update`"
    )]
    fn same_map_panics_with_both_names() {
        let _outer = Enter::new(1, "A::update");
        let _inner = Enter::new(1, "A::insert");
    }

    #[test]
    fn panic_unwinds_cleanly() {
        let outer = Enter::new(7, "A::update");
        let caught = std::panic::catch_unwind(|| Enter::new(7, "A::get"));
        assert!(caught.is_err());
        drop(outer);
        // The stack is empty again: entering the same map works.
        let _fresh = Enter::new(7, "A::get");
    }
}
