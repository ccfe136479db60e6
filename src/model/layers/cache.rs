//! A sequence's decode state: a paged KV cache per layer (MHA/GQA keys and values, MLA's
//! `c_kv` and `k_pe`) and the latent layers' constant-size state.
//!
//! The cached rows live in pages of `page_tokens` tokens taken from a pool as the sequence
//! grows. Layers that attend alike (the whole context, or one sliding window) share a page
//! table, which the kernels that write and read the cache follow (`ops::Pages`); a sliding
//! window's group keeps only the pages its window still sees and reuses the rest. The pool's
//! buffers grow (doubling, copied on the GPU) as pages are needed, up to the memory allowed,
//! so the memory held follows the tokens cached, not the context.

use crate::error::{Error, Result};
use crate::gpu::{Batch, GpuContext, GpuTensor};
use crate::model::layers::latent::LatentState;
use crate::model::layers::mha::KvCache;
use crate::model::layers::mla::MlaCache;
use crate::ops::{KvFormat, Pages};

/// Tokens per page unless asked otherwise: few enough that a short prompt holds little, many
/// enough that a page table stays small (512 entries at 128k tokens).
pub const DEFAULT_PAGE_TOKENS: usize = 256;

/// How a model's caches are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheOptions {
    /// Tokens per page (at least 1).
    pub page_tokens: usize,
    /// The most bytes the cache's pages may take, all layers together (`None`: what the
    /// context needs).
    pub memory: Option<u64>,
    /// How keys and values are stored.
    pub format: KvFormat,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            page_tokens: DEFAULT_PAGE_TOKENS,
            memory: None,
            format: KvFormat::F32,
        }
    }
}

/// The per-layer state carried between forward calls.
pub enum LayerCache {
    /// K and V of the cached tokens, in pages.
    Kv(KvCache),
    /// The latent layer's constant-size state.
    Latent(Box<LatentState>),
    /// MLA's compressed cache (`c_kv` and `k_pe` of the cached tokens), in pages.
    Mla(MlaCache),
}

impl LayerCache {
    /// Bytes held on the GPU.
    pub fn bytes(&self) -> u64 {
        match self {
            LayerCache::Kv(kv) => kv.bytes(),
            LayerCache::Latent(s) => s.bytes(),
            LayerCache::Mla(c) => c.bytes(),
        }
    }

    /// Bytes of one cached token (0 for the latent state).
    fn row_bytes(&self) -> u64 {
        match self {
            LayerCache::Kv(kv) => kv.row_bytes(),
            LayerCache::Latent(_) => 0,
            LayerCache::Mla(c) => c.row_bytes(),
        }
    }

    /// The same cache with room for `rows` rows, the first `kept` copied in `b`.
    fn grown(&self, b: &mut Batch, rows: usize, kept: usize) -> Result<LayerCache> {
        Ok(match self {
            LayerCache::Kv(kv) => LayerCache::Kv(kv.grown(b, rows, kept)?),
            LayerCache::Mla(c) => LayerCache::Mla(c.grown(b, rows, kept)?),
            LayerCache::Latent(_) => unreachable!("latent layers hold no pages"),
        })
    }
}

/// What a layer's paged cache is: the attention it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paging {
    /// Every token stays cached.
    Whole,
    /// Only the last `window` tokens are attended to, so only their pages are kept.
    Window(usize),
}

/// The layers that share a page table.
struct PageGroup {
    /// What its layers attend to.
    paging: Paging,
    /// Its layers.
    layers: Vec<usize>,
    /// Logical page -> pool page ([`Pages::NOT_HELD`] where none), on the host.
    host: Vec<u32>,
    /// The same on the GPU, `[logical pages]` u32.
    table: GpuTensor,
    /// Pool pages not held.
    free: Vec<u32>,
    /// Pool pages the layers' buffers have room for.
    allocated: usize,
    /// Logical pages below this one are not held (a window has moved past them).
    first_held: usize,
    /// Bytes of one page in all of the group's layers.
    page_bytes: u64,
    /// Bytes of one page in the group's widest layer (for the binding limit).
    widest_page_bytes: u64,
}

impl PageGroup {
    /// Pool pages held.
    fn held(&self) -> usize {
        self.allocated - self.free.len()
    }
}

/// Pages held and allocated, all groups together (what the tests check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageCount {
    /// Pool pages holding cached tokens.
    pub held: usize,
    /// Pool pages the buffers have room for (held and free).
    pub allocated: usize,
}

/// The decode state of a whole model for one sequence: one cache per layer and the tokens it
/// holds.
pub struct Cache {
    /// Per-layer caches.
    pub layers: Vec<LayerCache>,
    /// Tokens processed so far (the next token's position).
    pub len: usize,
    /// The context: positions `0..capacity`.
    pub capacity: usize,
    /// Each layer's page group (`None`: the latent state, not paged).
    group_of: Vec<Option<usize>>,
    groups: Vec<PageGroup>,
    options: CacheOptions,
    /// The largest buffer a kernel can bind, in bytes.
    binding_limit: u64,
    /// The model whose cache this is.
    model_id: u64,
}

impl Cache {
    /// A cache of model `model_id` for `capacity` positions over `layers` (each with its
    /// paging, `None` for a latent state), each paged cache allocated with one page.
    pub(crate) fn new(
        ctx: &GpuContext,
        (model_id, capacity): (u64, usize),
        layers: Vec<(LayerCache, Option<Paging>)>,
        options: CacheOptions,
    ) -> Result<Self> {
        if options.page_tokens == 0 {
            return Err(Error::Invalid {
                what: "tokens per cache page".into(),
                expected: "at least 1".into(),
                found: "0".into(),
            });
        }
        // A page longer than the context would only hold rows that never come.
        let options = CacheOptions {
            page_tokens: options.page_tokens.min(capacity.max(1)),
            ..options
        };
        let p = options.page_tokens;
        let logical = capacity.div_ceil(p);
        let mut groups: Vec<PageGroup> = Vec::new();
        let mut group_of = Vec::with_capacity(layers.len());
        for (i, (layer, paging)) in layers.iter().enumerate() {
            let Some(paging) = *paging else {
                group_of.push(None);
                continue;
            };
            let page = layer.row_bytes() * p as u64;
            let g = match groups.iter().position(|g| g.paging == paging) {
                Some(g) => g,
                None => {
                    groups.push(PageGroup {
                        paging,
                        layers: Vec::new(),
                        host: vec![Pages::NOT_HELD; logical],
                        table: GpuTensor::from_u32(
                            ctx,
                            "page table",
                            &[logical],
                            &vec![Pages::NOT_HELD; logical],
                        )?,
                        free: vec![0],
                        allocated: 1,
                        first_held: 0,
                        page_bytes: 0,
                        widest_page_bytes: 0,
                    });
                    groups.len() - 1
                }
            };
            groups[g].layers.push(i);
            groups[g].page_bytes += page;
            groups[g].widest_page_bytes = groups[g].widest_page_bytes.max(page);
            group_of.push(Some(g));
        }
        let cache = Cache {
            layers: layers.into_iter().map(|(l, _)| l).collect(),
            len: 0,
            capacity,
            group_of,
            groups,
            options,
            binding_limit: ctx.limits.max_storage_buffer_binding_size,
            model_id,
        };
        if let Some(memory) = options.memory {
            let one_page: u64 = cache.groups.iter().map(|g| g.page_bytes).sum();
            if one_page > memory {
                return Err(Error::Invalid {
                    what: "KV cache memory".into(),
                    expected: format!("at least one page per layer: {one_page} bytes"),
                    found: format!("{memory} bytes"),
                });
            }
        }
        Ok(cache)
    }

    /// Bytes held on the GPU by all layers.
    pub fn bytes(&self) -> u64 {
        self.layers.iter().map(LayerCache::bytes).sum()
    }

    /// The model whose cache this is.
    pub(crate) fn model_id(&self) -> u64 {
        self.model_id
    }

    /// Tokens per page.
    pub fn page_tokens(&self) -> usize {
        self.options.page_tokens
    }

    /// Bytes of the pages holding cached tokens (what [`Cache::bytes`] holds less the free
    /// pages).
    pub fn held_bytes(&self) -> u64 {
        self.groups
            .iter()
            .map(|g| g.held() as u64 * g.page_bytes)
            .sum::<u64>()
            + self
                .layers
                .iter()
                .filter(|l| matches!(l, LayerCache::Latent(_)))
                .map(LayerCache::bytes)
                .sum::<u64>()
    }

    /// Pages held and allocated, all groups together.
    pub fn pages(&self) -> PageCount {
        PageCount {
            held: self.groups.iter().map(PageGroup::held).sum(),
            allocated: self.groups.iter().map(|g| g.allocated).sum(),
        }
    }

    /// Layer `i`'s cache and the page table its rows follow (`None` for a latent state).
    pub fn layer(&self, i: usize) -> Option<(&LayerCache, Option<Pages<'_>>)> {
        let layer = self.layers.get(i)?;
        let pages = self.group_of.get(i).copied().flatten().map(|g| Pages {
            table: &self.groups[g].table,
            host: &self.groups[g].host,
            page_tokens: self.options.page_tokens,
        });
        Some((layer, pages))
    }

    /// Makes the pages of positions `first..end` held, before recording a forward pass whose
    /// first query is at `first`: a sliding window's group first returns the pages its window
    /// no longer sees, then pages come from the free list, the pool growing when it is empty.
    /// Both happen now, not in a batch: the pool's growth (a copy on the GPU) and the new
    /// page table entries are submitted at once, ahead of the batch the pass is recorded in,
    /// so a batch must reserve every position it will write before it records the first (as
    /// [`Decoder`](crate::model::Decoder) does for several decoded tokens). Errors, naming the
    /// context reached and the memory it needs, when the memory allowed or the binding limit
    /// is reached; the pages taken until then stay held.
    pub fn reserve(&mut self, ctx: &GpuContext, first: usize, end: usize) -> Result<()> {
        let logical = self.capacity.div_ceil(self.options.page_tokens);
        let tables = self.groups.iter().all(|g| g.host.len() >= logical);
        if end > self.capacity || first >= end || !tables {
            return Err(Error::Invalid {
                what: "cache positions".into(),
                expected: format!("a range within the context of {}", self.capacity),
                found: format!("{first}..{end}"),
            });
        }
        let p = self.options.page_tokens;
        for g in 0..self.groups.len() {
            let keep_from = match self.groups[g].paging {
                Paging::Whole => 0,
                Paging::Window(w) => (first + 1).saturating_sub(w),
            };
            let group = &mut self.groups[g];
            while group.first_held < keep_from / p {
                let page = std::mem::replace(&mut group.host[group.first_held], Pages::NOT_HELD);
                if page != Pages::NOT_HELD {
                    group.free.push(page);
                }
                group.first_held += 1;
            }
            // A sequence run again from before what a window kept (a rewind to 0).
            group.first_held = group.first_held.min(keep_from / p);
            let (mut lo, mut hi) = (usize::MAX, 0);
            let mut taken = Ok(());
            for page in keep_from / p..end.div_ceil(p) {
                if self.groups[g].host[page] == Pages::NOT_HELD {
                    match self.take_page(ctx, g, end) {
                        Ok(pool_page) => self.groups[g].host[page] = pool_page,
                        Err(e) => {
                            taken = Err(e);
                            break;
                        }
                    }
                    (lo, hi) = (lo.min(page), page + 1);
                }
            }
            if lo < hi {
                let group = &self.groups[g];
                let entries: &[u8] = bytemuck::cast_slice(&group.host[lo..hi]);
                let at = group.table.byte_offset() + 4 * lo as u64;
                ctx.queue.write_buffer(group.table.buffer(), at, entries);
            }
            taken?;
        }
        Ok(())
    }

    /// A free pool page of group `g`, growing its layers' buffers (a copy submitted now) when
    /// none is free.
    fn take_page(&mut self, ctx: &GpuContext, g: usize, end: usize) -> Result<u32> {
        if let Some(page) = self.groups[g].free.pop() {
            return Ok(page);
        }
        let p = self.options.page_tokens;
        let held: u64 = self
            .groups
            .iter()
            .map(|g| g.allocated as u64 * g.page_bytes)
            .sum();
        let group = &self.groups[g];
        let by_memory = match self.options.memory {
            Some(m) => group.allocated + (m.saturating_sub(held) / group.page_bytes) as usize,
            None => usize::MAX,
        };
        let by_binding = (self.binding_limit / group.widest_page_bytes) as usize;
        let by_context = self.capacity.div_ceil(p);
        let most = by_memory.min(by_binding).min(by_context);
        let grown = (2 * group.allocated).min(most);
        if grown <= group.allocated {
            return Err(self.out_of_pages(end, by_memory <= by_binding));
        }
        let old = group.allocated;
        let mut b = Batch::new(ctx);
        let mut layers = Vec::with_capacity(group.layers.len());
        for &i in &group.layers {
            layers.push((i, self.layers[i].grown(&mut b, grown * p, old * p)?));
        }
        b.submit()?;
        for (i, layer) in layers {
            self.layers[i] = layer;
        }
        let group = &mut self.groups[g];
        group.allocated = grown;
        group.free.extend((old as u32 + 1..grown as u32).rev());
        Ok(old as u32)
    }

    /// The error of a pool that cannot grow at `end` tokens: past the memory allowed
    /// (`by_memory`) or past the binding limit of one layer's buffer.
    fn out_of_pages(&self, end: usize, by_memory: bool) -> Error {
        let p = self.options.page_tokens;
        let needed: u64 = self
            .groups
            .iter()
            .map(|g| {
                let pages = match g.paging {
                    Paging::Whole => end.div_ceil(p),
                    Paging::Window(w) => (w.div_ceil(p) + 1).min(end.div_ceil(p)),
                };
                pages as u64 * g.page_bytes
            })
            .sum();
        let mib = |b: u64| match b {
            0..0x10_0000 => format!("{:.1} KiB", b as f64 / 1024.0),
            0x10_0000..0x4000_0000 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
            _ => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        };
        match by_memory {
            true => Error::Invalid {
                what: format!("KV cache memory at {end} tokens of context"),
                expected: format!(
                    "at most {} (the memory the cache may take: --cache-memory)",
                    mib(self.options.memory.unwrap_or(0))
                ),
                found: format!("{} needed for {end} tokens", mib(needed)),
            },
            false => Error::Invalid {
                what: format!("KV cache of one layer at {end} tokens of context"),
                expected: format!(
                    "at most {} per layer (the adapter's largest binding)",
                    mib(self.binding_limit)
                ),
                found: format!(
                    "{} needed; a smaller --context fits",
                    mib(needed / self.layers.len().max(1) as u64)
                ),
            },
        }
    }

    /// Whether the cache can go on from position `len` (a rewind): a sliding window's group
    /// must still hold the pages the query at `len` sees.
    pub fn can_resume_at(&self, len: usize) -> bool {
        let p = self.options.page_tokens;
        len == 0
            || self.groups.iter().all(|g| match g.paging {
                Paging::Whole => true,
                Paging::Window(w) => (len + 1).saturating_sub(w) / p >= g.first_held,
            })
    }

    /// Forgets every position from `len` on and returns the pages that held only them to the
    /// pool (all of them for `len` 0); the caller checks [`Cache::can_resume_at`] first.
    pub fn truncate(&mut self, len: usize) {
        let p = self.options.page_tokens;
        self.len = self.len.min(len);
        for group in &mut self.groups {
            for page in len.div_ceil(p)..group.host.len() {
                let pool_page = std::mem::replace(&mut group.host[page], Pages::NOT_HELD);
                if pool_page != Pages::NOT_HELD {
                    group.free.push(pool_page);
                }
            }
            if len == 0 {
                group.first_held = 0;
            }
        }
    }
}
