//! What a context shares with its tensors: the scratch buffer pool, the bind group cache, and
//! counters of what the engine created (for the no-allocation-per-token test and the profile).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Counts of GPU objects created by a context since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineCounters {
    /// Buffers created (tensors, scratch, staging, uniform overflow).
    pub buffers: u64,
    /// Bind groups created (the cache's misses).
    pub bind_groups: u64,
    /// Compute pipelines compiled.
    pub pipelines: u64,
    /// Shader modules created.
    pub shader_modules: u64,
    /// Dispatches recorded.
    pub dispatches: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub buffers: AtomicU64,
    pub bind_groups: AtomicU64,
    pub pipelines: AtomicU64,
    pub shader_modules: AtomicU64,
    pub dispatches: AtomicU64,
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> EngineCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EngineCounters {
            buffers: get(&self.buffers),
            bind_groups: get(&self.bind_groups),
            pipelines: get(&self.pipelines),
            shader_modules: get(&self.shader_modules),
            dispatches: get(&self.dispatches),
        }
    }
}

/// Free scratch bytes kept for reuse at most; a buffer given back past this is freed.
const POOL_MAX_FREE_BYTES: u64 = 512 << 20;

/// Free scratch buffers by size class (a power of two of at least 256 bytes), each class's
/// buffers ordered by creation serial. Handing out the lowest serial first makes the buffers an
/// identical sequence of requests gets identical, so the bind groups of one decoded token are
/// the cached ones of the token before.
#[derive(Default)]
pub(crate) struct ScratchPool {
    free: BTreeMap<u64, BTreeMap<u64, wgpu::Buffer>>,
    free_bytes: u64,
}

impl ScratchPool {
    /// The size class of a request of `bytes`.
    pub fn class(bytes: u64) -> u64 {
        bytes.max(256).next_power_of_two()
    }

    /// A free buffer of `class` bytes and its serial, if one is kept.
    pub fn take(&mut self, class: u64) -> Option<(u64, wgpu::Buffer)> {
        let entry = self.free.get_mut(&class)?.pop_first()?;
        self.free_bytes -= class;
        Some(entry)
    }

    /// Keeps `buffer` for reuse; returns it back when the pool is full (the caller frees it).
    pub fn give_back(&mut self, serial: u64, buffer: wgpu::Buffer) -> Option<wgpu::Buffer> {
        let class = buffer.size();
        if self.free_bytes + class > POOL_MAX_FREE_BYTES {
            return Some(buffer);
        }
        self.free_bytes += class;
        self.free.entry(class).or_default().insert(serial, buffer);
        None
    }

    /// Bytes held by free buffers.
    pub fn free_bytes(&self) -> u64 {
        self.free_bytes
    }
}

/// One scratch pool per thread. A buffer goes back to the pool of the thread that drops its
/// last tensor, and only that thread takes it again. A thread records one batch at a time, so
/// every batch that could still use the buffer has been submitted before the buffer is handed
/// out again (a later batch runs after it on the queue). One pool for all threads would hand a
/// buffer that another thread's batch, recorded but not yet submitted, still writes, to a
/// tensor that must outlive its own batch (a weight built on the GPU at load): that batch,
/// submitted later, would overwrite it.
#[derive(Default)]
pub(crate) struct ScratchPools(HashMap<std::thread::ThreadId, ScratchPool>);

impl ScratchPools {
    /// The calling thread's pool.
    pub fn mine(&mut self) -> &mut ScratchPool {
        self.0.entry(std::thread::current().id()).or_default()
    }

    /// Bytes held by free buffers of every thread's pool.
    pub fn free_bytes(&self) -> u64 {
        self.0.values().map(ScratchPool::free_bytes).sum()
    }
}

/// One buffer range of a bind group.
pub(crate) type RangeKey = (wgpu::Buffer, u64, u64);

/// A bind group's layout and the buffer range of each binding.
pub(crate) type BindGroupKey = (wgpu::BindGroupLayout, Vec<RangeKey>);

/// Bind groups of every (layout, buffer ranges) seen, so a decoded token reuses the bind groups
/// of the one before. An entry keeps its buffers alive, so a buffer's entries are dropped when
/// its tensor is (`forget`), and the whole cache when it grows past a bound.
#[derive(Default)]
pub(crate) struct BindGroupCache {
    map: HashMap<BindGroupKey, wgpu::BindGroup>,
}

/// Entries past which the cache starts over (a 30-layer decode uses about 500).
const BIND_GROUP_CACHE_MAX: usize = 8192;

impl BindGroupCache {
    /// The cached bind group of `key` (a layout and its buffer ranges), if any.
    pub fn get(&self, key: &BindGroupKey) -> Option<wgpu::BindGroup> {
        self.map.get(key).cloned()
    }

    /// Remembers `bind_group`.
    pub fn insert(&mut self, key: BindGroupKey, bind_group: wgpu::BindGroup) {
        if self.map.len() >= BIND_GROUP_CACHE_MAX {
            self.map.clear();
        }
        self.map.insert(key, bind_group);
    }

    /// Drops every entry that binds `buffer`.
    pub fn forget(&mut self, buffer: &wgpu::Buffer) {
        self.map
            .retain(|(_, ranges), _| !ranges.iter().any(|(b, ..)| b == buffer));
    }
}

/// The shared state of one context.
#[derive(Default)]
pub(crate) struct Resources {
    pub pool: Mutex<ScratchPools>,
    pub bind_groups: Mutex<BindGroupCache>,
    pub counters: Counters,
    /// Serial of the next buffer created.
    pub next_serial: AtomicU64,
}

impl Resources {
    /// A new buffer serial.
    pub fn serial(&self) -> u64 {
        self.next_serial.fetch_add(1, Ordering::Relaxed)
    }
}
