"""The text every template candidate carries ahead of its kernels (fusion/emit.py puts it there once):
host helpers (ceiling division and powers of two without Triton's wrappers, shared-memory repair of
a tuned config, split-K choice, row-kernel shapes, the device's facts asked once), `_launch` (a
call's compiled kernel kept and launched directly), and the kernels several templates share (TF32
rounding, a conv's operands in one launch, a BatchNorm's scale and shift from its statistics)."""

HELPERS = '''
def _cdiv(a, b):
    # Ceiling division on the host (triton.cdiv is a constexpr function: its wrapper cost a conv
    # draft's call about a fifth of its host time, H200, 2026-12-02).
    return -(-a // b)


def _pow2(n):
    # The least power of two >= n (0 for 0), as triton.next_power_of_2, without its wrapper.
    return 1 << (n - 1).bit_length() if n > 0 else 0


def _fit_stages(bm, bn, bk, stages, extra=0):
    # Shared memory holds `stages` A and B tiles of fp32 (and `extra` bytes); keep them under ~200 KB.
    while stages > 1 and (bm + bn) * bk * 4 * stages + extra > 200000:
        stages -= 1
    return stages


def _split_k(tiles, k, bk):
    # Few output tiles and a long K: split K so that every SM gets work.
    if tiles >= 64 or k < 8 * bk:
        return 1
    split = 1
    while split < 16 and tiles * split * 2 <= 256 and k // (split * 2) >= 4 * bk:
        split *= 2
    return split


def _bn_batch_stats(training, running_mean):
    # Whether a BatchNorm normalizes with the batch's statistics (training, or none kept), as torch does.
    return training or running_mean is None


@triton.jit
def _tf32_rn(x):
    # fp32 rounded to nearest (ties away from zero) at TF32's 10-bit mantissa; inf and NaN kept, the
    # largest finite values rounded to inf as the hardware's conversion does.
    bits = x.to(tl.uint32, bitcast=True)
    rounded = ((bits + 0x1000) & 0xFFFFE000).to(tl.float32, bitcast=True)
    return tl.where((bits & 0x7F800000) == 0x7F800000, x, rounded)


@triton.jit
def _tf32_rn_copy(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + i, _tf32_rn(tl.load(x_ptr + i, mask=i < n, other=0.0)), mask=i < n)


# Triton's tensor descriptors exist from 3.3 on.
_TRITON_DESCRIPTORS = tuple(int(v) for v in triton.__version__.split(".")[:2]) >= (3, 3)


_DEVICES = {}


def _device_facts(x):
    # (compute capability, multiprocessors) of x's GPU, asked once a device: each query costs a call
    # microseconds of host time.
    d = x.get_device()
    facts = _DEVICES.get(d)
    if facts is None:
        props = torch.cuda.get_device_properties(d)
        facts = _DEVICES[d] = ((props.major, props.minor), props.multi_processor_count)
    return facts


def _tma_ok(x, *more):
    # Input tiles by TMA: tensor descriptors, on Hopper and later (Triton's interpreter runs them on the
    # CPU too), of tensors that start on 16 bytes as TMA needs (a view into a tensor may not);
    # otherwise the convolutions gather their input by pointers.
    return _TRITON_DESCRIPTORS and (not x.is_cuda or _device_facts(x)[0][0] >= 9) \
        and all(t.data_ptr() % 16 == 0 for t in (x, *more))


if _TRITON_DESCRIPTORS:
    from triton.tools.tensor_descriptor import TensorDescriptor as _TensorDescriptor
else:
    _TensorDescriptor = ()  # (isinstance against it is False)


def _descriptor(t, block):
    # A TMA descriptor of `t` in boxes of `block` (its class exists where _tma_ok holds).
    return _TensorDescriptor.from_tensor(t, block)


# A launch's compiled kernel, kept by _launch.
from triton.compiler import CompiledKernel as _CompiledKernel


def _launch_key_part(a):
    # What a launch's compiled kernel depends on in one argument: a tensor's dtype, device and
    # 16-byte alignment (what Triton specialises a pointer on), a tensor descriptor's geometry, any
    # other value itself with its type (True and 1 differ).
    if isinstance(a, torch.Tensor):
        return (a.dtype, a.get_device(), a.data_ptr() % 16 == 0)
    if isinstance(a, _TensorDescriptor):
        return (a.base.dtype, a.base.get_device(), tuple(a.shape), tuple(a.strides), tuple(a.block_shape), a.padding)
    return (type(a), a)


_LAUNCH_OPTIONS = ("num_warps", "num_stages", "num_ctas", "maxnreg")
_LAUNCHES = {}


def _launch(kernel, grid, *args, **kwargs):
    # kernel[grid](*args, **kwargs), with the kernel Triton compiled for the first such call launched
    # directly after it: Triton's own dispatch re-derives the specialisation of every argument and
    # its cache key at each launch (on an H200's host, 2026-12-02: about 1 us of a 3-argument
    # launch's 18, about 22 us of a 24-argument launch's 52), host time a short conv's call is
    # measured by. The key is a superset of Triton's: a tensor's alignment and dtype, and every
    # other argument's value; a new value of a size compiles nothing new, it only takes Triton's
    # path once.
    key = (kernel, tuple(kwargs), *[_launch_key_part(a) for a in args],
           *[_launch_key_part(a) for a in kwargs.values()])
    hit = _LAUNCHES.get(key)
    if hit is None:
        compiled = kernel[grid](*args, **kwargs)
        # (None under Triton's interpreter, which has no compiled kernel to keep)
        if isinstance(compiled, _CompiledKernel):
            if len(_LAUNCHES) >= 4096:  # sizes that change on every call: keep the table bounded
                _LAUNCHES.clear()
            _LAUNCHES[key] = (compiled, _launch_order(kernel, len(args), kwargs))
        return
    compiled, (order, defaults) = hit
    given = (*args, *kwargs.values(), *defaults)
    # (the compiled kernel's launcher reads three grid dimensions)
    compiled[grid if len(grid) == 3 else (*grid, 1, 1)[:3]](*[given[i] for i in order])


def _launch_order(kernel, n_args, kwargs):
    # Where each of the kernel's parameters, in its signature's order, is among (positional
    # arguments, keyword values, the defaults of parameters not given): the compiled kernel takes
    # them all positionally, constexprs included.
    names = list(kernel.arg_names)
    given = {name: i for i, name in enumerate(names[:n_args])}
    given.update({name: n_args + j for j, name in enumerate(kwargs) if name not in _LAUNCH_OPTIONS})
    missing = [p for p in kernel.params if p.name not in given]
    for j, p in enumerate(missing):
        given[p.name] = n_args + len(kwargs) + j
    return [given[name] for name in names], tuple(p.default for p in missing)


@triton.jit
def _nhwc_tile(x_ptr, y_ptr, C, H, W, n, cb, pb, PSH: tl.constexpr, PSW: tl.constexpr, ROUND: tl.constexpr,
               BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    # (n, c, h, w) -> (n, h, w, c), rounded to TF32 where asked: BLOCK_C channels x BLOCK_P pixels of
    # image n. Split by phases (PSH, PSW) for a strided conv: pixel (h, w) goes to plane
    # n * PSH * PSW + (h % PSH) * PSW + w % PSW at (h // PSH, w // PSW), so that the pixels one tap of
    # the conv reads for a tile of outputs are a box of one plane.
    HW = H * W
    c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    p = pb * BLOCK_P + tl.arange(0, BLOCK_P)
    ok = (c < C)[:, None] & (p < HW)[None, :]
    v = tl.load(x_ptr + n * C * HW + c[:, None] * HW + p[None, :], mask=ok, other=0.0)
    if ROUND:
        v = _tf32_rn(v)
    if PSH * PSW == 1:
        q = n * HW + p
    else:
        h = p // W
        w = p - h * W
        ph = tl.cdiv(H, PSH)
        pw = tl.cdiv(W, PSW)
        q = ((n * PSH * PSW + (h % PSH) * PSW + w % PSW) * ph + h // PSH) * pw + w // PSW
    tl.store(y_ptr + q[None, :] * C + c[:, None], v, mask=ok)


@triton.jit
def _filter_chunk(w_ptr, out_ptr, row, chunk, C, CO, KH, KW, s_c, s_co, s_kh, s_kw, SH, SW, TH, TW, CP,
                  ROUND: tl.constexpr, BLOCK: tl.constexpr):
    # Row (rh, rw, co) of the packed filters: taps (jh, jw) by channels padded to CP, tap (jh, jw)
    # being the filter's (jh * SH + rh, jw * SW + rw); zeros beyond the filter and its channels.
    co = row % CO
    rw = (row // CO) % SW
    rh = row // (CO * SW)
    i = chunk * BLOCK + tl.arange(0, BLOCK)
    tap = i // CP
    c = i % CP
    kh = (tap // TW) * SH + rh
    kw = (tap % TW) * SW + rw
    ok = (i < TH * TW * CP) & (c < C) & (kh < KH) & (kw < KW)
    v = tl.load(w_ptr + c * s_c + co * s_co + kh * s_kh + kw * s_kw, mask=ok, other=0.0)
    if ROUND:
        v = _tf32_rn(v)
    tl.store(out_ptr + row.to(tl.int64) * (TH * TW * CP) + i, v, mask=i < TH * TW * CP)


@triton.jit
def _conv_operands(x_ptr, xl_ptr, w_ptr, wk_ptr, C_IN, H_IN, W_IN, COPY_TILES, C, CO, KH, KW, s_c, s_co, s_kh,
                   s_kw, SH, SW, TH, TW, CP, PSH: tl.constexpr, PSW: tl.constexpr, ROUND: tl.constexpr,
                   BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK: tl.constexpr):
    # A conv's operands in one launch: the first COPY_TILES programs copy the input channels-last,
    # the others pack the filter rows (a launch fewer to issue a call: host time the hidden-work
    # check counts against a call whose kernels are short).
    pid = tl.program_id(0)
    if pid < COPY_TILES:
        tiles_p = tl.cdiv(H_IN * W_IN, BLOCK_P)
        tiles_c = tl.cdiv(C_IN, BLOCK_C)
        _nhwc_tile(x_ptr, xl_ptr, C_IN, H_IN, W_IN, (pid // (tiles_p * tiles_c)).to(tl.int64),
                   (pid // tiles_p) % tiles_c, pid % tiles_p, PSH, PSW, ROUND, BLOCK_C, BLOCK_P)
    else:
        q = pid - COPY_TILES
        chunks = tl.cdiv(TH * TW * CP, BLOCK)
        _filter_chunk(w_ptr, wk_ptr, q // chunks, q % chunks, C, CO, KH, KW, s_c, s_co, s_kh, s_kw, SH, SW, TH, TW,
                      CP, ROUND, BLOCK)


def _conv_operands_launch(x, w, transposed, sh, sw, cp, rounded, phases=(1, 1)):
    # The filters (c_out, c, kh, kw), or (c, c_out, kh, kw) transposed, as the K-major rows the conv
    # kernels read: a row per (phase, output channel) (an ordinary conv has one phase: sh = sw = 1),
    # its taps by channels padded to cp, rounded to TF32 where asked; with `x`, also x's channels-last
    # copy (rounded alike) split by `phases` (a strided conv's (stride_h, stride_w): planes of
    # ceil(h / stride_h) x ceil(w / stride_w) pixels, zeros past the input), made by the same launch.
    # Returns (that copy or None, the rows).
    c, co = (w.shape[0], w.shape[1]) if transposed else (w.shape[1], w.shape[0])
    s_c, s_co = (w.stride(0), w.stride(1)) if transposed else (w.stride(1), w.stride(0))
    kh, kw = w.shape[2], w.shape[3]
    th, tw = _cdiv(kh, sh), _cdiv(kw, sw)
    wk = torch.empty((sh * sw * co, th * tw * cp), device=w.device, dtype=torch.float32)
    xl, c_in, h, w_, copy_tiles = None, 1, 1, 1, 0
    psh, psw = phases
    if x is not None:
        x = x.contiguous()
        n, c_in, h, w_ = x.shape
        shape = (n * psh * psw, _cdiv(h, psh), _cdiv(w_, psw), c_in)
        # (the planes' cells past the input are read as the conv's zero padding)
        xl = (torch.zeros if h % psh or w_ % psw else torch.empty)(shape, device=x.device, dtype=torch.float32)
        copy_tiles = n * _cdiv(c_in, 32) * _cdiv(h * w_, 64)
    _launch(_conv_operands, (copy_tiles + sh * sw * co * _cdiv(th * tw * cp, 1024),),
        x if x is not None else w, xl if xl is not None else wk, w, wk, c_in, h, w_, copy_tiles, c, co, kh, kw, s_c,
        s_co, w.stride(2), w.stride(3), sh, sw, th, tw, cp, PSH=psh, PSW=psw, ROUND=rounded, BLOCK_C=32, BLOCK_P=64,
        BLOCK=1024, num_warps=4)
    return xl, wk


def _pack_filters(w, transposed, sh, sw, cp, rounded):
    # A conv's filters as its kernels' K-major rows, in one launch (pad, permute and round as torch
    # ops took a launch each).
    return _conv_operands_launch(None, w, transposed, sh, sw, cp, rounded)[1]


def _tma_operands(x, w, transposed, sh, sw, cp, rounded, phases=(1, 1)):
    # Both operands of a TMA conv: x (n, c, h, w) as a contiguous (n, h, w, c) tensor (split by
    # `phases` for a strided conv: _conv_operands_launch), whose channels TMA reads as rows, and the
    # filters' rows; rounded to TF32 where asked. One launch where x must be copied (one read and one
    # write of x, at about the copy bandwidth); a view where it is channels-last already and unsplit.
    if x.is_contiguous(memory_format=torch.channels_last) and phases == (1, 1):
        xl = x.permute(0, 2, 3, 1)
        return (_round_tf32(xl) if rounded else xl), _pack_filters(w, transposed, sh, sw, cp, rounded)
    return _conv_operands_launch(x, w, transposed, sh, sw, cp, rounded, phases)


def _round_tf32(t):
    # A contiguous tensor's copy rounded to TF32 (a conv's weights, once a call: one launch; rounding
    # the weight tiles in the conv kernel instead cost its K loop 25%, 2026-12-01).
    out = torch.empty_like(t)
    _launch(_tf32_rn_copy, (_cdiv(t.numel(), 1024),), t, out, t.numel(), BLOCK=1024)
    return out


@triton.jit
def _bn_finalize(cnt_ptr, mean_ptr, m2_ptr, w_ptr, b_ptr, rm_ptr, rv_ptr, nbt_ptr, scale_ptr, shift_ptr, CHUNKS, C,
                 eps, momentum, BATCH: tl.constexpr, UPDATE: tl.constexpr, HAS_W: tl.constexpr, HAS_B: tl.constexpr,
                 BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    # BLOCK_C channels a program. Batch statistics: the per-tile (count, mean, M2) merged in one pass,
    # BLOCK_R tiles at a time (each block's own mean and M2, then Chan's formula), the running
    # statistics updated as BatchNorm does; else the running statistics. Then the scale and shift.
    c = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_ok = c < C
    if BATCH:
        total = 0.0
        mean = tl.zeros((BLOCK_C,), dtype=tl.float32)
        m2 = tl.zeros((BLOCK_C,), dtype=tl.float32)
        for r0 in range(0, CHUNKS, BLOCK_R):
            r = r0 + tl.arange(0, BLOCK_R)
            ok = (r < CHUNKS)[:, None] & c_ok[None, :]
            cnt = tl.load(cnt_ptr + r, mask=r < CHUNKS, other=0.0)
            n_b = tl.sum(cnt, axis=0)
            mt = tl.load(mean_ptr + r[:, None] * C + c[None, :], mask=ok, other=0.0)
            mean_b = tl.sum(cnt[:, None] * mt, axis=0) / tl.maximum(n_b, 1.0)  # (no tile empty: a guard)
            d = tl.where(ok, mt - mean_b[None, :], 0.0)
            m2_b = tl.sum(tl.load(m2_ptr + r[:, None] * C + c[None, :], mask=ok, other=0.0) + cnt[:, None] * d * d,
                          axis=0)
            both = tl.maximum(total + n_b, 1.0)
            delta = mean_b - mean
            m2 = m2 + m2_b + delta * delta * (total * n_b / both)
            mean = mean + delta * (n_b / both)
            total = total + n_b
        var = m2 / total
        if UPDATE:
            rm = tl.load(rm_ptr + c, mask=c_ok, other=0.0)
            rv = tl.load(rv_ptr + c, mask=c_ok, other=0.0)
            tl.store(rm_ptr + c, rm * (1.0 - momentum) + mean * momentum, mask=c_ok)
            tl.store(rv_ptr + c, rv * (1.0 - momentum) + var * (total / (total - 1.0)) * momentum, mask=c_ok)
            if tl.program_id(0) == 0:
                tl.store(nbt_ptr, tl.load(nbt_ptr) + 1)
    else:
        mean = tl.load(rm_ptr + c, mask=c_ok, other=0.0)
        var = tl.load(rv_ptr + c, mask=c_ok, other=1.0)
    scale = 1.0 / tl.sqrt_rn(var + eps)
    if HAS_W:
        scale = scale * tl.load(w_ptr + c, mask=c_ok, other=0.0)
    shift = -mean * scale
    if HAS_B:
        shift = shift + tl.load(b_ptr + c, mask=c_ok, other=0.0)
    tl.store(scale_ptr + c, scale, mask=c_ok)
    tl.store(shift_ptr + c, shift, mask=c_ok)


def _bn_scale_shift(cnt, mean_t, m2_t, weight, bias, running_mean, running_var, tracked, training, eps, momentum):
    # A BatchNorm's per-channel scale and shift, its running statistics updated in training (as
    # BatchNorm does): one launch, where torch ops took about fifteen, each paid on the host.
    batch = _bn_batch_stats(training, running_mean)
    update = bool(batch and training and running_mean is not None)
    ref = mean_t if batch else running_mean
    c = ref.shape[-1]
    scale = torch.empty((c,), device=ref.device, dtype=torch.float32)
    shift = torch.empty_like(scale)
    some = lambda t: scale if t is None else t  # noqa: E731 - an unread pointer where there is no tensor
    # About 128 programs where there are channels for them (a wave of the SMs: at 16 channels a
    # program, level3/10's 64 channels ran on 4 programs, each merging 1600 tiles), up to 16 channels
    # (64-byte rows of the tiles' statistics); tiles merged in blocks of up to 4096 values.
    chunks = cnt.shape[0] if batch else 0
    block_c = min(16, max(1, _pow2(c // 128 + 1) // 2))
    block_r = min(max(16, _pow2(chunks)), 4096 // block_c, 1024)
    _launch(_bn_finalize, (_cdiv(c, block_c),),
        some(cnt), some(mean_t), some(m2_t), some(weight), some(bias), some(running_mean), some(running_var),
        tracked if update else scale, scale, shift, chunks, c, eps, momentum if update else 0.0,
        BATCH=batch, UPDATE=update, HAS_W=weight is not None, HAS_B=bias is not None, BLOCK_R=block_r, BLOCK_C=block_c,
        num_warps=4)
    return scale, shift


def _sms(x):
    # Multiprocessors of x's device (off a GPU, Triton's interpreter: 4)
    return _device_facts(x)[1] if x.is_cuda else 4


def _split_length(x, programs, length, block, waves, cap):
    # Cut `length` into chunks (of whole blocks, at least 4 each, at most `cap` chunks) when fewer
    # than `waves` programs per SM would run otherwise: (number of chunks, chunk length).
    split = max(1, min(cap, _cdiv(waves * _sms(x), programs), _cdiv(length, 4 * block)))
    ch = _cdiv(_cdiv(length, split), block) * block
    return _cdiv(length, ch), ch


def _row_config(n):
    block_n = _pow2(n)
    rows = max(1, min(64, ROW_TILE // block_n))
    warps = max(1, min(16, rows * block_n // (32 * ROW_PER_THREAD)))
    return block_n, rows, _pow2(warps)
'''
