// A paged KV cache: a sequence's cached rows live in fixed-size pages of a pool buffer, listed
// in order by its page table `pages` (declared by the shader that includes this):
//   logical row s  at pool row  pages[s / page_tokens] * page_tokens + s % page_tokens
// page_tokens 0 is an unpaged cache (or any tensor): row s at row s, the table not read.
fn cache_row(s: u32, page_tokens: u32) -> u32 {
    if (page_tokens == 0u) {
        return s;
    }
    return pages[s / page_tokens] * page_tokens + s % page_tokens;
}
