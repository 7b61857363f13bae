/**
 * Float64 kernels for the reference forward: plain loops over row-major [rows, cols] matrices, written for
 * obviousness, not speed. Every function returns a fresh array.
 */

/** A row-major matrix: `rows × cols` values. */
export interface Mat { rows: number; cols: number; data: Float64Array }

export function mat (rows: number, cols: number, data: Float64Array = new Float64Array(rows * cols)): Mat {
  if (data.length !== rows * cols) throw new Error(`mat: ${data.length} values for ${rows}×${cols}`)
  return { rows, cols, data }
}

/**
 * y = x·Wᵀ + b for a torch `nn.Linear` weight W [out, in] (`layout: 'out_in'`), or y = x·W + b for a
 * GPT-2 `Conv1D` weight W [in, out] (`layout: 'in_out'`).
 */
export function linear (x: Mat, weight: Float64Array, outFeatures: number, bias: Float64Array | null, layout: 'out_in' | 'in_out'): Mat {
  const inFeatures = x.cols
  if (weight.length !== inFeatures * outFeatures) throw new Error(`linear: weight has ${weight.length} values, expected ${inFeatures}×${outFeatures}`)
  const y = mat(x.rows, outFeatures)
  for (let r = 0; r < x.rows; r++) {
    const xo = r * inFeatures
    for (let o = 0; o < outFeatures; o++) {
      let sum = bias === null ? 0 : bias[o]
      if (layout === 'out_in') {
        const wo = o * inFeatures
        for (let i = 0; i < inFeatures; i++) sum += x.data[xo + i] * weight[wo + i]
      } else {
        for (let i = 0; i < inFeatures; i++) sum += x.data[xo + i] * weight[i * outFeatures + o]
      }
      y.data[r * outFeatures + o] = sum
    }
  }
  return y
}

export function add (a: Mat, b: Mat): Mat {
  const y = mat(a.rows, a.cols)
  for (let i = 0; i < y.data.length; i++) y.data[i] = a.data[i] + b.data[i]
  return y
}

export function mul (a: Mat, b: Mat): Mat {
  const y = mat(a.rows, a.cols)
  for (let i = 0; i < y.data.length; i++) y.data[i] = a.data[i] * b.data[i]
  return y
}

export function map (a: Mat, f: (v: number) => number): Mat {
  const y = mat(a.rows, a.cols)
  for (let i = 0; i < y.data.length; i++) y.data[i] = f(a.data[i])
  return y
}

/** torch.nn.LayerNorm over the last dim (biased variance). */
export function layerNorm (x: Mat, weight: Float64Array, bias: Float64Array, eps: number): Mat {
  const y = mat(x.rows, x.cols)
  for (let r = 0; r < x.rows; r++) {
    const row = x.data.subarray(r * x.cols, (r + 1) * x.cols)
    let mean = 0
    for (const v of row) mean += v
    mean /= x.cols
    let variance = 0
    for (const v of row) variance += (v - mean) ** 2
    variance /= x.cols
    const scale = 1 / Math.sqrt(variance + eps)
    for (let c = 0; c < x.cols; c++) y.data[r * x.cols + c] = (row[c] - mean) * scale * weight[c] + bias[c]
  }
  return y
}

/** Llama/Qwen2 RMSNorm: weight · x / sqrt(mean(x²) + eps). */
export function rmsNorm (x: Mat, weight: Float64Array, eps: number): Mat {
  const y = mat(x.rows, x.cols)
  for (let r = 0; r < x.rows; r++) {
    let meanSquare = 0
    for (let c = 0; c < x.cols; c++) meanSquare += x.data[r * x.cols + c] ** 2
    const scale = 1 / Math.sqrt(meanSquare / x.cols + eps)
    for (let c = 0; c < x.cols; c++) y.data[r * x.cols + c] = weight[c] * x.data[r * x.cols + c] * scale
  }
  return y
}

/** erf to ~1e-15: Maclaurin series for |x| < 3, a continued fraction for erfc beyond. */
function erf (x: number): number {
  const z = Math.abs(x)
  if (z < 3) {
    let term = z
    let sum = z
    for (let n = 1; n < 200; n++) {
      term *= -z * z / n
      const next = term / (2 * n + 1)
      sum += next
      if (Math.abs(next) < 1e-17 * Math.abs(sum)) break
    }
    return Math.sign(x) * sum * 2 / Math.sqrt(Math.PI)
  }
  // erfc(z) = exp(-z²)/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + 2/(z + …))))), evaluated bottom-up
  let fraction = z
  for (let k = 60; k >= 1; k--) fraction = z + (k / 2) / fraction
  const erfc = Math.exp(-z * z) / Math.sqrt(Math.PI) / fraction
  return Math.sign(x) * (1 - erfc)
}

/** The activation named by a config's `hidden_act` / `activation_function` (transformers ACT2FN semantics). */
export function activation (name: string): (v: number) => number {
  switch (name) {
    case 'gelu':
      return (v) => 0.5 * v * (1 + erf(v / Math.SQRT2))
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))
    case 'gelu_fast':
      return (v) => 0.5 * v * (1 + Math.tanh(v * 0.7978845608 * (1 + 0.044715 * v * v)))
    case 'silu':
    case 'swish':
      return (v) => v / (1 + Math.exp(-v))
    case 'relu':
      return (v) => Math.max(0, v)
    default:
      throw new Error(`reference forward: activation ${name} is not implemented`)
  }
}

/**
 * Causal scaled-dot-product attention for one head: q [seq, d], k/v [seq, d] (already rotated).
 * Returns the head's output [seq, d] and its probabilities [seq, seq] (masked entries exactly 0).
 */
export function causalAttention (q: Mat, k: Mat, v: Mat, scale: number): { out: Mat; probs: Mat } {
  const seq = q.rows
  const probs = mat(seq, seq)
  for (let i = 0; i < seq; i++) {
    let max = -Infinity
    const scores = new Float64Array(i + 1)
    for (let j = 0; j <= i; j++) {
      let dot = 0
      for (let c = 0; c < q.cols; c++) dot += q.data[i * q.cols + c] * k.data[j * k.cols + c]
      scores[j] = dot * scale
      if (scores[j] > max) max = scores[j]
    }
    let total = 0
    for (let j = 0; j <= i; j++) total += (scores[j] = Math.exp(scores[j] - max))
    for (let j = 0; j <= i; j++) probs.data[i * seq + j] = scores[j] / total
  }
  const out = mat(seq, v.cols)
  for (let i = 0; i < seq; i++) {
    for (let j = 0; j <= i; j++) {
      const p = probs.data[i * seq + j]
      for (let c = 0; c < v.cols; c++) out.data[i * v.cols + c] += p * v.data[j * v.cols + c]
    }
  }
  return { out, probs }
}

/** Columns [start, start + width) of a matrix. */
export function columns (x: Mat, start: number, width: number): Mat {
  const y = mat(x.rows, width)
  for (let r = 0; r < x.rows; r++) {
    for (let c = 0; c < width; c++) y.data[r * width + c] = x.data[r * x.cols + start + c]
  }
  return y
}

/** Writes `part` into columns [start, start + part.cols) of `target`. */
export function setColumns (target: Mat, start: number, part: Mat): void {
  for (let r = 0; r < target.rows; r++) {
    for (let c = 0; c < part.cols; c++) target.data[r * target.cols + start + c] = part.data[r * part.cols + c]
  }
}

/**
 * HF rotary tables at `positions` (default 0..seq-1): inv_freq[i] = theta^(-2i/dim), emb = cat(freqs, freqs);
 * returns cos and sin, each [seq, dim].
 */
export function ropeTables (seq: number, dim: number, theta: number, positions: readonly number[] = Array.from({ length: seq }, (_, i) => i)): { cos: Mat; sin: Mat } {
  const cos = mat(seq, dim)
  const sin = mat(seq, dim)
  const half = dim / 2
  for (let row = 0; row < seq; row++) {
    const p = positions[row]!
    for (let i = 0; i < half; i++) {
      const angle = p * theta ** (-(2 * i) / dim)
      cos.data[row * dim + i] = cos.data[row * dim + i + half] = Math.cos(angle)
      sin.data[row * dim + i] = sin.data[row * dim + i + half] = Math.sin(angle)
    }
  }
  return { cos, sin }
}

/**
 * Applies HF `apply_rotary_pos_emb` to the first `cos.cols` dims of one head x [seq, headDim]:
 * x_rot·cos + rotate_half(x_rot)·sin, with rotate_half(x) = cat(-x2, x1); the remaining dims pass through.
 */
export function applyRope (x: Mat, cos: Mat, sin: Mat): Mat {
  const dim = cos.cols
  const half = dim / 2
  const y = mat(x.rows, x.cols, x.data.slice())
  for (let p = 0; p < x.rows; p++) {
    for (let i = 0; i < dim; i++) {
      const rotated = i < half ? -x.data[p * x.cols + i + half] : x.data[p * x.cols + i - half]
      y.data[p * x.cols + i] = x.data[p * x.cols + i] * cos.data[p * dim + i] + rotated * sin.data[p * dim + i]
    }
  }
  return y
}

/** ‖a − b‖ / ‖b‖ over flat arrays of equal length (throws on a length mismatch). */
export function relativeError (a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relativeError: lengths ${a.length} and ${b.length} differ`)
  let num = 0
  let den = 0
  for (let i = 0; i < b.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2 }
  return Math.sqrt(num / den)
}
