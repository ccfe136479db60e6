//! Tensors from the files to the GPU: vectors whole, matrices in the format asked for, split
//! into row blocks past the block limit. A large matrix is read, converted and uploaded a piece
//! at a time (about [`PIECE_BYTES`]), so loading holds one piece of it on the host, not the
//! whole tensor in its file form, as f32 and as the upload's copy.

use crate::error::Result;
use crate::gpu::split::{block_limit, upload_rows, upload_rows_from, PIECE_BYTES};
use crate::gpu::{DType, GpuContext, GpuTensor};
use crate::model::formats::weights::{HostMatrix, WeightFile};
use crate::ops::{QuantHost, QuantScheme, QuantWeight, Weight, WeightFormat};

/// Uploads tensor `name` of `shape` from the file, f32 in one buffer (vectors, latents, the
/// router: tensors that kernels other than the weight products read).
pub(crate) fn load(
    ctx: &GpuContext,
    file: &mut WeightFile,
    name: &str,
    shape: &[usize],
) -> Result<GpuTensor> {
    let data = file.take(name, shape)?;
    GpuTensor::from_f32(ctx, name, shape, &data)
}

/// Uploads matrix `name` of `shape` in the format the file asks for (f32, f16 or quantized),
/// split into row blocks past the block limit; piece by piece when it is large.
pub(crate) fn load_matrix(
    ctx: &GpuContext,
    file: &mut WeightFile,
    name: &str,
    shape: &[usize],
) -> Result<Weight> {
    let up = Upload::of(ctx, file);
    let (rows, k) = match shape {
        [rows, k] if streams(file, name, shape) => (*rows, *k),
        _ => {
            let data = file.take_matrix(name, shape)?;
            return upload_matrix(ctx, up, name, shape, data);
        }
    };
    file.check_rows(name, shape)?;
    Ok(match target(up, file.stored_scheme(name), name, shape) {
        Target::Blocks(scheme) => {
            let w = QuantWeight::upload_from(ctx, name, [rows, k], scheme, up.block_bytes, |r| {
                blocks_in(scheme, file.take_rows(name, shape, r)?, k)
            })?;
            Weight::Quant(Box::new(w))
        }
        Target::Values(dtype) => Weight::Dense(upload_rows_from(
            ctx,
            name,
            shape,
            dtype,
            up.block_bytes,
            |r| Ok(file.take_rows(name, shape, r)?.into_f32()),
        )?),
    })
}

/// Uploads table `name` of `shape` in f32, split into row blocks past the block limit (an
/// embedding not tied to the LM head); piece by piece when it is large.
pub(crate) fn load_rows(
    ctx: &GpuContext,
    file: &mut WeightFile,
    name: &str,
    shape: &[usize],
) -> Result<GpuTensor> {
    let limit = block_limit(ctx, file.block_bytes);
    if !streams(file, name, shape) {
        let data = file.take(name, shape)?;
        return upload_rows(ctx, name, shape, DType::F32, &data, limit);
    }
    file.check_rows(name, shape)?;
    upload_rows_from(ctx, name, shape, DType::F32, limit, |r| {
        Ok(file.take_rows(name, shape, r)?.into_f32())
    })
}

/// Whether matrix `name` of `shape` is read a piece at a time: a matrix past [`PIECE_BYTES`]
/// in f32 that the files let be read by rows.
fn streams(file: &WeightFile, name: &str, shape: &[usize]) -> bool {
    let values = shape.iter().try_fold(4usize, |a, &d| a.checked_mul(d));
    shape.len() == 2 && values.is_none_or(|b| b > PIECE_BYTES) && file.reads_rows(name)
}

/// How matrices go to the GPU: their format, and the largest block they are split into.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Upload {
    /// f32, f16, bf16 or quantized; `None`: as the files hold them (quantized blocks as they
    /// are, values in `values`).
    pub format: Option<WeightFormat>,
    /// The format float values take when none is asked: the files' own 16-bit type where all
    /// their matrices have it, else f32 ([`WeightFile::values_format`]).
    pub values: WeightFormat,
    /// Bytes per row block at most (the adapter's binding limit, or a smaller forced one).
    pub block_bytes: u64,
}

impl Upload {
    /// The file's choice on `ctx`.
    pub fn of(ctx: &GpuContext, file: &WeightFile) -> Self {
        Upload {
            format: file.weights,
            values: file.values_format(),
            block_bytes: block_limit(ctx, file.block_bytes),
        }
    }
}

/// What a matrix becomes on the GPU.
enum Target {
    /// Quantized blocks in this scheme.
    Blocks(QuantScheme),
    /// Values in this dtype (f32 or f16).
    Values(DType),
}

/// What matrix `name` `[rows, k]`, held in the files as blocks of `stored` (or as values),
/// becomes with `up`. Blocks stay as they are when their scheme is asked for (or none is);
/// another format gets their values. A matrix whose rows are not whole blocks of 32 stays f32
/// when quantized formats are asked for (as llama.cpp keeps such tensors unquantized).
fn target(up: Upload, stored: Option<QuantScheme>, name: &str, shape: &[usize]) -> Target {
    if let Some(stored) = stored {
        match up.format {
            None => return Target::Blocks(stored),
            Some(WeightFormat::Quant(s)) if s == stored => return Target::Blocks(stored),
            Some(WeightFormat::Quant(s)) => log::warn!(
                "'{name}' is {} in the file: its values are quantized again as {}",
                stored.name(),
                s.name()
            ),
            Some(_) => {}
        }
    }
    let k = shape.get(1).copied().unwrap_or(1);
    match up.format.unwrap_or(up.values) {
        f @ WeightFormat::Quant(scheme) if f.fits_row(k) && shape.len() == 2 => {
            Target::Blocks(scheme)
        }
        WeightFormat::Quant(scheme) => {
            log::info!(
                "'{name}' {shape:?} stays f32: its rows are not whole blocks of 32 for {}",
                scheme.name()
            );
            Target::Values(DType::F32)
        }
        f @ (WeightFormat::F16 | WeightFormat::BF16) if f.fits_row(k) && shape.len() == 2 => {
            Target::Values(f.dtype())
        }
        f @ (WeightFormat::F16 | WeightFormat::BF16) => {
            log::info!(
                "'{name}' {shape:?} stays f32: {} products read rows of whole quads",
                f.name()
            );
            Target::Values(DType::F32)
        }
        WeightFormat::F32 => Target::Values(DType::F32),
    }
}

/// `data`, rows of `k` weights, as blocks of `scheme`: as they are when they are, else their
/// values quantized.
fn blocks_in(scheme: QuantScheme, data: HostMatrix, k: usize) -> Result<QuantHost> {
    match data {
        HostMatrix::Quant(q) if q.scheme == scheme => Ok(q),
        other => crate::ops::quantize(scheme, &other.into_f32(), k),
    }
}

/// Uploads a matrix `[rows, k]` held on the host in the format `up` says (see [`target`]), in
/// row blocks past its block limit.
pub(crate) fn upload_matrix(
    ctx: &GpuContext,
    up: Upload,
    name: &str,
    shape: &[usize],
    data: HostMatrix,
) -> Result<Weight> {
    let stored = match &data {
        HostMatrix::Quant(q) => Some(q.scheme),
        HostMatrix::F32(_) => None,
    };
    let limit = up.block_bytes;
    Ok(match target(up, stored, name, shape) {
        Target::Blocks(scheme) => {
            let (rows, k) = (
                shape.first().copied().unwrap_or(1),
                shape.get(1).copied().unwrap_or(1),
            );
            let host = blocks_in(scheme, data, k)?;
            Weight::Quant(Box::new(QuantWeight::upload(
                ctx,
                name,
                [rows, k],
                &host,
                limit,
            )?))
        }
        Target::Values(dtype) => Weight::Dense(upload_rows(
            ctx,
            name,
            shape,
            dtype,
            &data.into_f32(),
            limit,
        )?),
    })
}

/// The matrices `parts` (rows of one width `k`) stacked into one weight `[Σ rows, k]` (a
/// layer's q, k and v as one product). Parts whose blocks stay as the file holds them in
/// different formats (a Q4_K_M file's v in q6_K beside q and k in q4_K) stay so, each in its
/// own row blocks; otherwise the rows are joined and uploaded as [`upload_matrix`] does.
pub(crate) fn upload_stacked(
    ctx: &GpuContext,
    up: Upload,
    name: &str,
    k: usize,
    parts: Vec<HostMatrix>,
) -> Result<Weight> {
    let rows_of = |p: &HostMatrix| match p {
        HostMatrix::Quant(q) => q.chunks() * crate::ops::QUANT_BLOCK / k.max(1),
        HostMatrix::F32(v) => v.len() / k.max(1),
    };
    let kept: Vec<Option<QuantScheme>> = parts
        .iter()
        .map(|p| match p {
            HostMatrix::Quant(q) => match target(up, Some(q.scheme), name, &[rows_of(p), k]) {
                Target::Blocks(s) if s == q.scheme => Some(s),
                _ => None,
            },
            HostMatrix::F32(_) => None,
        })
        .collect();
    let mixed = kept.iter().all(Option::is_some) && kept.windows(2).any(|w| w[0] != w[1]);
    let rows: usize = parts.iter().map(rows_of).sum();
    if !mixed {
        return upload_matrix(ctx, up, name, &[rows, k], HostMatrix::concat(parts));
    }
    let mut uploaded = Vec::with_capacity(parts.len());
    for (i, part) in parts.into_iter().enumerate() {
        let shape = [rows_of(&part), k];
        // A part kept in its blocks (`kept`) uploads as blocks.
        if let Weight::Quant(q) = upload_matrix(ctx, up, &format!("{name}[{i}]"), &shape, part)? {
            uploaded.push(*q);
        }
    }
    let refs: Vec<&QuantWeight> = uploaded.iter().collect();
    Ok(Weight::Quant(Box::new(QuantWeight::stack_blocks(
        name, &refs,
    )?)))
}
