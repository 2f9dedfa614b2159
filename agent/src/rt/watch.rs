//! A value that one owner replaces and many readers follow: readers take a cheap `Arc`
//! snapshot and can ask whether a newer generation exists, without a channel per reader.

use std::sync::{
    Arc, RwLock,
    atomic::{AtomicU64, Ordering},
};

#[derive(Debug)]
pub struct Watch<T> {
    inner: Arc<Inner<T>>,
}

#[derive(Debug)]
struct Inner<T> {
    value: RwLock<Arc<T>>,
    generation: AtomicU64,
}

impl<T> Clone for Watch<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Watch<T> {
    /// Generation 1 holds `value`.
    pub fn new(value: T) -> Self {
        Self {
            inner: Arc::new(Inner {
                value: RwLock::new(Arc::new(value)),
                generation: AtomicU64::new(1),
            }),
        }
    }

    /// The value in force now.
    pub fn current(&self) -> Arc<T> {
        // A panic elsewhere while holding the lock leaves a valid Arc behind: keep using it.
        self.inner
            .value
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }

    /// Replaces the value; returns the new generation.
    pub fn set(&self, value: T) -> u64 {
        let mut cur = self.inner.value.write().unwrap_or_else(|e| e.into_inner());
        *cur = Arc::new(value);
        self.inner.generation.fetch_add(1, Ordering::SeqCst) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_the_newest_value_and_generation() {
        let w = Watch::new(1);
        let r = w.clone();
        assert_eq!((*r.current(), r.generation()), (1, 1));
        assert_eq!(w.set(5), 2);
        assert_eq!((*r.current(), r.generation()), (5, 2));
    }
}
