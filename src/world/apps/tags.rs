//! Per-socket state of a stream plug-in, indexed by the socket's tag: the
//! tag a plug-in gives `tcp_connect` / `on_accept` is a slot here, and slots
//! of released sockets are reused.

/// Values by tag; freed tags are reused before the table grows.
#[derive(Debug)]
pub(super) struct Tags<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Tags<T> {
    fn default() -> Self {
        Tags {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Tags<T> {
    /// Store `v` under a free tag; the tag.
    pub(super) fn add(&mut self, v: T) -> u32 {
        match self.free.pop() {
            Some(t) => {
                self.slots[t as usize] = Some(v);
                t
            }
            None => {
                self.slots.push(Some(v));
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Take the value out of `tag` (its tag is free again).
    pub(super) fn remove(&mut self, tag: u32) -> Option<T> {
        let v = self.slots.get_mut(tag as usize)?.take();
        if v.is_some() {
            self.free.push(tag);
        }
        v
    }

    pub(super) fn get(&self, tag: u32) -> Option<&T> {
        self.slots.get(tag as usize)?.as_ref()
    }

    pub(super) fn get_mut(&mut self, tag: u32) -> Option<&mut T> {
        self.slots.get_mut(tag as usize)?.as_mut()
    }
}
