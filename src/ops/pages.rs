//! The page table of a paged KV cache, as the kernels that write the cache (`qkv_rope`,
//! `mla_rope`) and read it (`attention`) take it: a sequence's rows live in fixed-size pages of a
//! pool buffer, in any order (see `shaders/prelude/cache_pages.wgsl`).

use super::as_u32;
use crate::error::{shape_err, Result};
use crate::gpu::{Batch, GpuTensor};

/// Where a paged cache's rows are: logical row `s` is pool row
/// `host[s / page_tokens] · page_tokens + s % page_tokens` of every buffer the table serves.
#[derive(Clone, Copy, Debug)]
pub struct Pages<'a> {
    /// The page table on the GPU, `[logical pages]` u32 (what the kernels read).
    pub table: &'a GpuTensor,
    /// The same table on the host; a page not held is [`Pages::NOT_HELD`] (never read: the
    /// kernels only read rows a query sees).
    pub host: &'a [u32],
    /// Tokens per page (at least 1).
    pub page_tokens: usize,
}

impl Pages<'_> {
    /// The host table's mark of a logical page that holds no pool page.
    pub const NOT_HELD: u32 = u32::MAX;

    /// The pool row of logical row `s`, if its page is held.
    pub fn row(&self, s: usize) -> Option<usize> {
        let page = *self.host.get(s / self.page_tokens)?;
        (page != Self::NOT_HELD).then(|| page as usize * self.page_tokens + s % self.page_tokens)
    }

    /// The highest pool row of logical rows `first..end` (not empty), checking each of their
    /// pages is held (`op` names the kernel in the error).
    pub fn last_row(&self, op: &'static str, first: usize, end: usize) -> Result<usize> {
        let p = self.page_tokens;
        let mut last = 0;
        for page in first / p..end.div_ceil(p) {
            let rows = page * p..(page + 1) * p;
            let base = self
                .host
                .get(page)
                .filter(|&&at| at != Self::NOT_HELD)
                .ok_or_else(|| {
                    shape_err(
                        op,
                        format!("page {page} of the cache (rows {rows:?})"),
                        format!("held, as rows {first}..{end} are read or written"),
                        "a page not held",
                    )
                })?;
            // The last of the rows in this page.
            last = last.max(*base as usize * p + (end.min(rows.end) - 1) % p);
        }
        Ok(last)
    }

    /// The kernels' `page_tokens` param (checked to fit).
    pub(crate) fn param(&self, op: &'static str) -> Result<u32> {
        if self.page_tokens == 0 {
            return Err(shape_err(op, "tokens per page", "at least 1", 0));
        }
        as_u32(op, "tokens per page", self.page_tokens)
    }

    /// Logical rows `0..n` of `pool` `[pool rows, ...]` copied in order into a new contiguous
    /// `[n, ...]` tensor of its dtype (a run of consecutive pool rows is one copy).
    pub fn gather(&self, b: &mut Batch, pool: &GpuTensor, n: usize) -> Result<GpuTensor> {
        const OP: &str = "page gather";
        let row: usize = pool.shape()[1..].iter().product();
        let mut shape = pool.shape().to_vec();
        shape[0] = n;
        let out = GpuTensor::scratch(b.ctx(), pool.label(), &shape, pool.dtype())?;
        self.last_row(OP, 0, n)?;
        // Page by page (held, as `last_row` checked), pages whose pool rows follow on merged
        // into one copy.
        let p = self.page_tokens;
        let mut s = 0;
        while s < n {
            let start = self.row(s).unwrap_or(0);
            let mut len = (p - s % p).min(n - s);
            while s + len < n && self.row(s + len) == Some(start + len) {
                len += p.min(n - s - len);
            }
            b.copy_elements(pool, start * row, &out, s * row, len * row)?;
            s += len;
        }
        Ok(out)
    }
}

/// The first `n` rows of cache tensor `t` (`[rows, ...]`, f32 or f16) as f32, in order: through
/// `pages` when the cache is paged. What the matrix kernels (the prefill's products path, MLA's
/// naive path) read.
pub fn cache_rows_f32(
    b: &mut Batch,
    t: &GpuTensor,
    pages: Option<Pages>,
    n: usize,
) -> Result<GpuTensor> {
    let rows = match pages {
        Some(pages) => pages.gather(b, t, n)?,
        None => t.rows(n)?,
    };
    match super::KvFormat::of("cache rows", "cache", t)? {
        super::KvFormat::F32 => Ok(rows),
        super::KvFormat::F16 => {
            let rows = b.bindable(&rows)?;
            super::to_f32(b, &rows)
        }
    }
}
