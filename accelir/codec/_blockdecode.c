/*
 * accelir.codec._blockdecode: decode every block of a container with one libjpeg decompressor.
 *
 * The pixels are those of decoding each block's standalone JPEG (``block_jpeg``) with
 * libjpeg-turbo: islow IDCT, "fancy" (triangle) chroma upsampling that replicates the block's own
 * edges, YCbCr -> RGB. Decoding 500 tiny JPEGs one by one spends most of its time setting up
 * libjpeg per image (Huffman lookup tables, buffers), so this module decodes a *strip* instead:
 *
 *   All blocks that share a quality (and a shape: the bottom row and right column of a container
 *   of version 2 code only their visible part) are stacked into one block-wide abbreviated JPEG
 *   whose restart interval is one block. A container's segments are byte-aligned entropy-coded
 *   segments that start with a DC prediction of zero, which is exactly what follows a restart
 *   marker, so the strip is the segments joined by RSTn markers: no re-encoding (a container of
 *   version 3 stores them without byte stuffing, which the copy into the strip adds). libjpeg returns
 *   the strip's raw Y, Cb and Cr planes (``raw_data_out``), and the chroma upsampling and colour
 *   conversion run here, per block, with the block's own edges replicated -- the arithmetic of
 *   libjpeg-turbo's h2v2 fancy upsampler and its YCbCr -> RGB tables, so the result is the
 *   standalone decode (tests/test_codec_engines.py checks it against simplejpeg and Pillow).
 *
 * If a strip fails (corrupt data: libjpeg warnings count as errors), its blocks are decoded one
 * at a time as one-block strips -- a block's standalone scan, with no restart marker -- which
 * names the failing block exactly as an outside decoder would fail on it (and decodes what it
 * can decode).
 *
 * decode_blocks(data, tables, quant, quant_of_block, offsets, lengths, out, rows, cols, block,
 *               h_factor, last_height, last_width, mode[, rebuild])
 *   data             bytes-like: the container's entropy-coded segments
 *   tables           bytes: SOI, DHT (the container's shared tables), EOI
 *   quant            uint16 buffer (n, 2, 64): luma and chroma tables in natural order
 *   quant_of_block   int32 buffer (rows*cols): index into quant per block, row-major
 *   offsets, lengths int64 buffers (rows*cols): each block's segment inside data
 *   out              writable C-contiguous uint8 buffer of (rows*block) x (cols*block) x 3
 *   h_factor         2 for 4:2:0, 1 for 4:4:4
 *   last_height      coded height of the last row's blocks (1..block; block for version 1)
 *   last_width       coded width of the last column's blocks (1..block)
 *   mode             0: segments are scan data (versions 1, 2); 1: stored without byte stuffing
 *                    (version 3); 2: stored without their first DC code words (versions 4, 5),
 *                    rebuilt with ``rebuild`` = (levels int16 (rows*cols, 3), scan_lengths
 *                    int64 (rows*cols), huff int32 (H_SIZE), insert_at int64 (rows*cols, 3)):
 *                    see rebuild_scan)
 * Raises ValueError("block (r, c): ...") on corrupt data. The GIL is released while decoding.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#define MAX_BLOCK 64
#define MAX_STRIP_HEIGHT 65535 /* SOF0 height field */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} ErrorManager;

static void on_error(j_common_ptr cinfo) {
    ErrorManager *err = (ErrorManager *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level) {
    if (level < 0) { /* a warning means corrupt data: strict, like simplejpeg's strict=True */
        on_error(cinfo);
    }
}

/* ---- chroma upsampling and YCbCr -> RGB ------------------------------------------------- */

/* libjpeg's fixed-point colour conversion (jdcolor.c: 16 fractional bits); it tabulates these
 * products, we compute them, in loops the compiler vectorises. */
#define SCALEBITS 16
#define ONE_HALF ((int32_t)1 << (SCALEBITS - 1))
#define FIX(x) ((int32_t)((x) * (1L << SCALEBITS) + 0.5))

#if defined(__x86_64__) && defined(__GNUC__)
#define VECTORISED __attribute__((target_clones("avx2", "default")))
#else
#define VECTORISED
#endif

static inline int32_t clamp255(int32_t v) {
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

/* One output row of 2x triangle-filter upsampling (libjpeg-turbo's h2v2 "fancy" upsampler):
 * ``near`` is the nearest input row, ``far`` the next nearest (the row above for an upper output
 * row, below for a lower one; the block's edge row stands in for a missing one). Each output is
 * 9/16, 3/16, 3/16, 1/16 of its four nearest inputs with alternating rounding biases 8 and 7; at
 * the left and right edges the missing column is the edge column, which gives libjpeg's special
 * cases (4 * colsum + 8, 4 * colsum + 7) exactly. */
VECTORISED
static void upsample_row(const unsigned char *near, const unsigned char *far, int n, int32_t *sum,
                         int32_t *out) {
    for (int c = 0; c < n; c++) sum[c + 1] = 3 * near[c] + far[c];
    sum[0] = sum[1];
    sum[n + 1] = sum[n];
    for (int c = 0; c < n; c++) {
        out[2 * c] = (3 * sum[c + 1] + sum[c] + 8) >> 4;
        out[2 * c + 1] = (3 * sum[c + 1] + sum[c + 2] + 7) >> 4;
    }
}

/* libjpeg upsamples a chroma plane of at most 2 samples per row by replication ("box"), not by
 * the triangle filter (jdsample.c: fancy only when downsampled_width > 2). */
static void box_row(const unsigned char *in, int n, int32_t *out) {
    for (int c = 0; c < n; c++) out[2 * c] = out[2 * c + 1] = in[c];
}

VECTORISED
static void convert_row(const unsigned char *y, const int32_t *cb, const int32_t *cr, int b,
                        unsigned char *rgb) {
    unsigned char red[MAX_BLOCK], green[MAX_BLOCK], blue[MAX_BLOCK];
    for (int x = 0; x < b; x++) { /* planar first: this loop vectorises */
        const int32_t u = cb[x] - 128, v = cr[x] - 128, l = y[x];
        red[x] = (unsigned char)clamp255(l + ((FIX(1.40200) * v + ONE_HALF) >> SCALEBITS));
        green[x] = (unsigned char)clamp255(
            l + ((-FIX(0.34414) * u - FIX(0.71414) * v + ONE_HALF) >> SCALEBITS));
        blue[x] = (unsigned char)clamp255(l + ((FIX(1.77200) * u + ONE_HALF) >> SCALEBITS));
    }
    for (int x = 0; x < b; x++) {
        rgb[3 * x] = red[x];
        rgb[3 * x + 1] = green[x];
        rgb[3 * x + 2] = blue[x];
    }
}

/* One block's planes (Y with row stride ``ys``, Cb and Cr with ``cs``) to its ``th`` x ``tw``
 * RGB pixels at ``dst`` (row stride in bytes); chroma edges (ceil(th / h) x ceil(tw / h)
 * samples) are replicated, as libjpeg does at the edges of an image of that size. */
static void block_to_rgb(const unsigned char *y, const unsigned char *cb, const unsigned char *cr,
                         int ys, int cs, int th, int tw, int h, unsigned char *dst,
                         Py_ssize_t stride) {
    int32_t cb_row[MAX_BLOCK], cr_row[MAX_BLOCK], sum[MAX_BLOCK / 2 + 2];
    const int rows = (th + h - 1) / h, cols = (tw + h - 1) / h;
    for (int r = 0; r < th; r++) {
        if (h == 2) {
            const int near = r >> 1;
            const int far =
                (r & 1) ? (near + 1 < rows ? near + 1 : rows - 1) : (near > 0 ? near - 1 : 0);
            if (cols > 2) {
                upsample_row(cb + near * cs, cb + far * cs, cols, sum, cb_row);
                upsample_row(cr + near * cs, cr + far * cs, cols, sum, cr_row);
            } else {
                box_row(cb + near * cs, cols, cb_row);
                box_row(cr + near * cs, cols, cr_row);
            }
        } else {
            for (int x = 0; x < tw; x++) {
                cb_row[x] = cb[r * cs + x];
                cr_row[x] = cr[r * cs + x];
            }
        }
        convert_row(y + r * ys, cb_row, cr_row, tw, dst + r * stride);
    }
}

/* Output rows [row_lo, row_hi) of the whole image from its planes, chroma upsampled across
 * block edges as a whole-image JPEG decoder does: the image's own edges (``width`` x ``height``,
 * chroma ceil(width / h) x ceil(height / h)) are replicated, nothing else. Planes have the
 * padded strides ``ystride`` and ``cstride``; ``rgb`` rows have ``stride`` bytes. */
static int image_to_rgb(const unsigned char *y, const unsigned char *cb, const unsigned char *cr,
                        Py_ssize_t ystride, Py_ssize_t cstride, int h, Py_ssize_t width,
                        Py_ssize_t height, Py_ssize_t row_lo, Py_ssize_t row_hi,
                        unsigned char *rgb, Py_ssize_t stride) {
    const Py_ssize_t cw = (width + h - 1) / h, ch = (height + h - 1) / h;
    int32_t *buf = malloc((size_t)(2 * cw + 2) * 3 * sizeof *buf + 2 * MAX_BLOCK);
    if (!buf) return -1;
    int32_t *cb_row = buf, *cr_row = buf + 2 * cw + 2, *sum = cr_row + 2 * cw + 2;
    for (Py_ssize_t r = row_lo; r < row_hi; r++) {
        if (h == 2) {
            const Py_ssize_t near = r >> 1;
            const Py_ssize_t far = (r & 1) ? (near + 1 < ch ? near + 1 : ch - 1)
                                           : (near > 0 ? near - 1 : 0);
            if (cw > 2) {
                upsample_row(cb + near * cstride, cb + far * cstride, (int)cw, sum, cb_row);
                upsample_row(cr + near * cstride, cr + far * cstride, (int)cw, sum, cr_row);
            } else {
                box_row(cb + near * cstride, (int)cw, cb_row);
                box_row(cr + near * cstride, (int)cw, cr_row);
            }
        } else {
            for (Py_ssize_t x = 0; x < width; x++) {
                cb_row[x] = cb[r * cstride + x];
                cr_row[x] = cr[r * cstride + x];
            }
        }
        for (Py_ssize_t x = 0; x < width; x += MAX_BLOCK) {
            const int n = (int)(width - x < MAX_BLOCK ? width - x : MAX_BLOCK);
            convert_row(y + r * ystride + x, cb_row + x, cr_row + x, n, rgb + r * stride + 3 * x);
        }
    }
    free(buf);
    return 0;
}

/* ---- datastreams ------------------------------------------------------------------------ */

static unsigned char *put16(unsigned char *p, unsigned v) {
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return p + 2;
}

/* SOI, SOF0 (the given width and height, 3 components), DRI when restart > 0, SOS. */
static size_t write_headers(unsigned char *p0, int width, int height, int h, int restart) {
    unsigned char *p = p0;
    *p++ = 0xFF, *p++ = 0xD8;
    *p++ = 0xFF, *p++ = 0xC0;
    p = put16(p, 17);
    *p++ = 8;
    p = put16(p, (unsigned)height);
    p = put16(p, (unsigned)width);
    *p++ = 3;
    *p++ = 1, *p++ = (unsigned char)((h << 4) | h), *p++ = 0;
    *p++ = 2, *p++ = 0x11, *p++ = 1;
    *p++ = 3, *p++ = 0x11, *p++ = 1;
    if (restart > 0) {
        *p++ = 0xFF, *p++ = 0xDD;
        p = put16(p, 4);
        p = put16(p, (unsigned)restart);
    }
    *p++ = 0xFF, *p++ = 0xDA;
    p = put16(p, 12);
    *p++ = 3;
    *p++ = 1, *p++ = 0x00;
    *p++ = 2, *p++ = 0x11;
    *p++ = 3, *p++ = 0x11;
    *p++ = 0, *p++ = 63, *p++ = 0;
    return (size_t)(p - p0);
}

#define HEADERS_MAX 64

/* Strips that failed and were redone block by block, since the module was loaded. */
static long strip_fallbacks = 0;

typedef struct {
    struct jpeg_decompress_struct *cinfo;
    ErrorManager *err;
    const unsigned char *data;
    const uint16_t *quant;
    const int64_t *offsets, *lengths;
    unsigned char *out;
    Py_ssize_t rows, cols, stride;
    int b, h;
    int last_h, last_w; /* coded size of the last row's / last column's blocks */
    int mode;           /* SCAN_STUFFED, SCAN_UNSTUFFED or SCAN_REBUILD (see copy_scan) */
    /* SCAN_REBUILD: each block's first-DC values (int16 x 3), its scan's length, the bits of
     * its segment where their code words belong (int64 x 3), and the Huffman arrays (H_SIZE
     * int32) */
    const int16_t *levels;
    const int64_t *scan_lengths;
    const int64_t *insert_at;
    const int32_t *huff;
    unsigned char *scratch;
    unsigned char *planes; /* one block: Y, then Cb, then Cr */
    /* seamless mode: the whole grid's planes (Y: rows*b x cols*b, chroma: rows*b/h x cols*b/h),
     * filled instead of ``out`` */
    unsigned char *yplane, *cbplane, *crplane;
} Job;

/* Copy the coded ``th`` x ``tw`` part of one block's planes (row strides ``ys``, ``cs``) into
 * the whole grid's planes. */
static void store_planes(const Job *job, Py_ssize_t i, const unsigned char *yp,
                         const unsigned char *cbp, const unsigned char *crp, int ys, int cs,
                         int th, int tw) {
    const int b = job->b, h = job->h, c = b / h;
    const int crows = (th + h - 1) / h, ccols = (tw + h - 1) / h;
    const Py_ssize_t ystride = job->cols * b, cstride = job->cols * c;
    unsigned char *ydst = job->yplane + (i / job->cols) * b * ystride + (i % job->cols) * b;
    const Py_ssize_t coff = (i / job->cols) * c * cstride + (i % job->cols) * c;
    for (int r = 0; r < th; r++) memcpy(ydst + r * ystride, yp + r * ys, (size_t)tw);
    for (int r = 0; r < crows; r++) {
        memcpy(job->cbplane + coff + r * cstride, cbp + r * cs, (size_t)ccols);
        memcpy(job->crplane + coff + r * cstride, crp + r * cs, (size_t)ccols);
    }
}

/* Shape class of block i: bit 0 set in the last row when it is cut short, bit 1 in the last
 * column. Blocks of one class and quality share a strip. */
static int shape_class(const Job *job, Py_ssize_t i) {
    return ((i / job->cols == job->rows - 1 && job->last_h < job->b) ? 1 : 0) |
           ((i % job->cols == job->cols - 1 && job->last_w < job->b) ? 2 : 0);
}

static void set_quant(struct jpeg_decompress_struct *cinfo, const uint16_t *q) {
    for (int t = 0; t < 2; t++) {
        memcpy(cinfo->quant_tbl_ptrs[t]->quantval, q + 64 * t, 64 * sizeof(UINT16));
    }
}

static unsigned char *block_origin(const Job *job, Py_ssize_t i) {
    return job->out + (i / job->cols) * job->b * job->stride + (i % job->cols) * job->b * 3;
}

enum { SCAN_STUFFED = 0, SCAN_UNSTUFFED = 1, SCAN_REBUILD = 2 };

/* Copy one stored segment to ``dst`` as JPEG scan data: as it is (versions 1 and 2), or with a
 * 0x00 stuffed after every 0xFF when it is stored unstuffed (version 3). Returns the bytes
 * written: at most 2 * n. */
static size_t copy_scan(unsigned char *dst, const unsigned char *src, size_t n, int unstuffed) {
    if (!unstuffed) {
        memcpy(dst, src, n);
        return n;
    }
    unsigned char *p = dst;
    while (n > 0) {
        const unsigned char *ff = memchr(src, 0xFF, n);
        const size_t run = ff ? (size_t)(ff - src) + 1 : n;
        memcpy(p, src, run);
        p += run, src += run, n -= run;
        if (ff) *p++ = 0x00;
    }
    return (size_t)(p - dst);
}

/* ---- versions 4 and 5: standalone scans rebuilt from stored segments -------------------------
 *
 * Such a segment lacks the DC code words of its block's first Y, Cb and Cr unit (their values
 * are in the container's first-DC map). The container's parse found, by decoding each block's
 * first MCU, the bits where the code words belong (accelir.codec.scan.first_mcus); rebuild_scan
 * writes the block's standalone scan: the segment's pieces with the code words put back, cut or
 * padded with one-bits to the scan's length, a 0x00 stuffed after every 0xFF. The same
 * algorithm as accelir/codec/scan.py (numba), which serves block_jpeg and the simplejpeg
 * engine; the tests compare both with scans written directly. */

#define LOOKUP_BITS 11

/* Layout of the int32 ``huff`` buffer (accelir.codec.scan.huffman_arrays): per table slot
 * (DC luma, AC luma, DC chroma, AC chroma), canonical decoding arrays indexed by code length
 * 1..16, the symbols, a lookup of the next LOOKUP_BITS bits, and each symbol's code and length. */
enum {
    H_FIRST = 0,                      /* [4][17] first code of each length */
    H_LAST = H_FIRST + 4 * 17,        /* [4][17] last code of each length, -1: none */
    H_START = H_LAST + 4 * 17,        /* [4][17] index of the first symbol of each length */
    H_VALUES = H_START + 4 * 17,      /* [4][256] symbols in code order */
    H_FAST = H_VALUES + 4 * 256,      /* [4][1 << LOOKUP_BITS] lookup, 0 where the code is longer:
                                       * bits to skip (code word and extra bits) | run step
                                       * << 8 | end of block << 16 (AC tables), bits to skip
                                       * | size << 8 (DC tables); the parse in scan.py reads it,
                                       * this file only the codes and lengths */
    H_CODES = H_FAST + 4 * (1 << LOOKUP_BITS), /* [4][256] code of each symbol */
    H_LENGTHS = H_CODES + 4 * 256,    /* [4][256] code length of each symbol, 0: absent */
    H_SIZE = H_LENGTHS + 4 * 256,
};

typedef struct {
    unsigned char *p;
    uint64_t acc;
    int n;
} Writer;

static inline unsigned seg_byte(const unsigned char *s, size_t n, size_t i) {
    return i < n ? s[i] : 0xFF; /* past the stored bytes: one-bits, the padding */
}

static inline void emit(Writer *w, unsigned byte) {
    *w->p++ = (unsigned char)byte;
    if (byte == 0xFF) *w->p++ = 0x00;
}

/* Whether any of the eight bytes of ``x`` is 0xFF. */
static inline int has_ff(uint64_t x) {
    const uint64_t y = ~x;
    return ((y - 0x0101010101010101ULL) & ~y & 0x8080808080808080ULL) != 0;
}

static inline void put_bits(Writer *w, uint32_t code, int len) {
    w->acc = (w->acc << len) | code;
    w->n += len;
    while (w->n >= 8) {
        w->n -= 8;
        emit(w, (unsigned)(w->acc >> w->n) & 0xFF);
    }
    w->acc &= (((uint64_t)1) << w->n) - 1;
}

/* ``len`` <= 16 bits of a segment from bit ``p``. */
static inline uint32_t read_bits(const unsigned char *s, size_t n, uint64_t p, int len) {
    const size_t i = (size_t)(p >> 3);
    const uint32_t word = (seg_byte(s, n, i) << 16) | (seg_byte(s, n, i + 1) << 8) |
                          seg_byte(s, n, i + 2);
    return (word >> (24 - (int)(p & 7) - len)) & ((1u << len) - 1);
}

/* Append ``nbits`` of a segment from bit ``p``: up to a byte boundary of the output, then
 * whole bytes, shifted, then the rest. */
static void copy_bits(Writer *w, const unsigned char *s, size_t n, uint64_t p, uint64_t nbits) {
    int head = (8 - w->n) & 7;
    if ((uint64_t)head > nbits) head = (int)nbits;
    if (head) {
        put_bits(w, read_bits(s, n, p, head), head);
        p += (uint64_t)head, nbits -= (uint64_t)head;
    }
    const unsigned shift = (unsigned)(p & 7);
    size_t i = (size_t)(p >> 3);
    const size_t nbytes = (size_t)(nbits >> 3);
    size_t inside = (n > i + 1) ? n - i - 1 : 0; /* both source bytes stored */
    if (inside > nbytes) inside = nbytes;
    const unsigned char *src = s + i;
    size_t k = 0;
    for (; k + 8 <= inside; k += 8) { /* eight bytes a step: big-endian words, shifted */
        uint64_t word;
        memcpy(&word, src + k, 8);
        if (shift) {
            word = __builtin_bswap64(word) << shift | (uint64_t)(src[k + 8] >> (8 - shift));
            word = __builtin_bswap64(word);
        }
        if (has_ff(word)) { /* byte stuffing needed somewhere in these eight */
            const unsigned char *bytes = (const unsigned char *)&word;
            for (int j = 0; j < 8; j++) emit(w, bytes[j]);
        } else {
            memcpy(w->p, &word, 8);
            w->p += 8;
        }
    }
    for (; k < inside; k++) {
        emit(w, shift ? ((unsigned)(src[k] << shift) | (unsigned)(src[k + 1] >> (8 - shift))) & 0xFF
                      : src[k]);
    }
    for (size_t k = inside; k < nbytes; k++) {
        const unsigned word = (seg_byte(s, n, i + k) << 8) | seg_byte(s, n, i + k + 1);
        emit(w, (word >> (8 - shift)) & 0xFF);
    }
    p += (uint64_t)nbytes * 8;
    const int rest = (int)(nbits & 7);
    if (rest) put_bits(w, read_bits(s, n, p, rest), rest);
}

static inline int category(int v) {
    unsigned m = (unsigned)(v < 0 ? -v : v);
    int c = 0;
    while (m) c++, m >>= 1;
    return c;
}

/* Block i's standalone scan, stuffed, at ``dst`` (room for twice its scan length). Returns the
 * bytes written, or -1 when its code word positions or its scan length cannot hold it. */
static Py_ssize_t rebuild_scan(const Job *job, Py_ssize_t i, unsigned char *dst) {
    const int32_t *H = job->huff;
    const unsigned char *s = job->data + job->offsets[i];
    const size_t n = (size_t)job->lengths[i];
    const int64_t *insert_at = job->insert_at + 3 * i;
    for (int c = 0; c < 3; c++) {
        const int64_t before = c ? insert_at[c - 1] : 0;
        if (insert_at[c] < before || (uint64_t)insert_at[c] > 8 * (uint64_t)n) return -1;
    }
    Writer w = {dst, 0, 0};
    uint64_t remaining = 8 * (uint64_t)job->scan_lengths[i], at = 0;
    for (int c = 0; c < 3; c++) {
        uint64_t piece = (uint64_t)insert_at[c] - at;
        if (piece > remaining) piece = remaining;
        copy_bits(&w, s, n, at, piece);
        remaining -= piece, at = (uint64_t)insert_at[c];
        const int slot = c == 0 ? 0 : 2, v = job->levels[3 * i + c], cat = category(v);
        const int len = H[H_LENGTHS + slot * 256 + cat];
        if (len == 0 || (uint64_t)(len + cat) > remaining) return -1;
        const uint32_t extra = (uint32_t)(v >= 0 ? v : v + (1 << cat) - 1);
        put_bits(&w, ((uint32_t)H[H_CODES + slot * 256 + cat] << cat) | extra, len + cat);
        remaining -= (uint64_t)(len + cat);
    }
    copy_bits(&w, s, n, at, remaining);
    return w.n == 0 ? (Py_ssize_t)(w.p - dst) : -1;
}

/* Blocks ``idx[0..n)`` (all of one quality and shape class) as one strip. Returns 0, or -1
 * (then nothing is promised about the blocks' pixels). */
static int decode_strip(Job *job, const Py_ssize_t *idx, Py_ssize_t n, int quant_index) {
    struct jpeg_decompress_struct *cinfo = job->cinfo;
    const int b = job->b, h = job->h, mcu = 8 * h, cls = shape_class(job, idx[0]);
    const int th = (cls & 1) ? job->last_h : b, tw = (cls & 2) ? job->last_w : b;
    /* each block fills whole MCUs of the strip: sh x sw luma samples */
    const int sh = (th + mcu - 1) / mcu * mcu, sw = (tw + mcu - 1) / mcu * mcu, cw = sw / h;
    const int mcus_per_block = (sh / mcu) * (sw / mcu);
    if (setjmp(job->err->jump)) {
        jpeg_abort_decompress(cinfo);
        return -1;
    }
    set_quant(cinfo, job->quant + (size_t)quant_index * 128);
    /* The strip is tw wide and (n - 1) * sh + th high, so a one-block strip is exactly the
     * block's standalone JPEG; no DRI for it: libjpeg counts bits left in its buffer at a
     * restart as extraneous data, but not at EOI, and a one-block strip must be the standalone
     * scan */
    size_t len = write_headers(job->scratch, tw, (int)(sh * (n - 1) + th), h,
                               n > 1 ? mcus_per_block : 0);
    for (Py_ssize_t k = 0; k < n; k++) {
        if (job->mode == SCAN_REBUILD) {
            const Py_ssize_t written = rebuild_scan(job, idx[k], job->scratch + len);
            if (written < 0) {
                snprintf(job->err->message, sizeof job->err->message,
                         "corrupt scan data (its scan length)");
                return -1;
            }
            len += (size_t)written;
        } else {
            len += copy_scan(job->scratch + len, job->data + job->offsets[idx[k]],
                             (size_t)job->lengths[idx[k]], job->mode == SCAN_UNSTUFFED);
        }
        if (k + 1 < n) {
            job->scratch[len++] = 0xFF;
            job->scratch[len++] = (unsigned char)(0xD0 + (k & 7));
        }
    }
    job->scratch[len++] = 0xFF, job->scratch[len++] = 0xD9;
    jpeg_mem_src(cinfo, job->scratch, (unsigned long)len);
    jpeg_read_header(cinfo, TRUE);
    cinfo->raw_data_out = TRUE;
    cinfo->dct_method = JDCT_ISLOW;
    jpeg_start_decompress(cinfo);

    const int lines = mcu; /* luma rows per iMCU row */
    unsigned char *yp = job->planes, *cbp = yp + sw * sh, *crp = cbp + cw * (sh / h);
    JSAMPROW yrows[2 * DCTSIZE], cbrows[DCTSIZE], crrows[DCTSIZE];
    JSAMPARRAY image[3] = {yrows, cbrows, crrows};
    for (Py_ssize_t k = 0; k < n; k++) {
        for (int top = 0; top < sh; top += lines) {
            for (int r = 0; r < lines; r++) yrows[r] = yp + (top + r) * sw;
            for (int r = 0; r < 8; r++) {
                cbrows[r] = cbp + (top / h + r) * cw;
                crrows[r] = crp + (top / h + r) * cw;
            }
            if (jpeg_read_raw_data(cinfo, image, (JDIMENSION)lines) != (JDIMENSION)lines) {
                snprintf(job->err->message, sizeof job->err->message, "short strip");
                jpeg_abort_decompress(cinfo);
                return -1;
            }
        }
        if (job->yplane) {
            store_planes(job, idx[k], yp, cbp, crp, sw, cw, th, tw);
        } else {
            block_to_rgb(yp, cbp, crp, sw, cw, th, tw, h, block_origin(job, idx[k]), job->stride);
        }
    }
    jpeg_finish_decompress(cinfo);
    return 0;
}

/* Returns -1 on success, else the index of the first block that fails standalone. */
static Py_ssize_t decode_all(Job *job, const int32_t *quant_of_block, Py_ssize_t nq,
                             Py_ssize_t nblocks, Py_ssize_t *order) {
    const Py_ssize_t per_strip = MAX_STRIP_HEIGHT / job->b;
    /* order: block indices grouped by (quality, shape class), raster order within a group
     * (counting sort) */
    const Py_ssize_t ngroups = 4 * nq;
    Py_ssize_t *start = calloc((size_t)ngroups + 1, sizeof *start);
    if (!start) {
        snprintf(job->err->message, sizeof job->err->message, "out of memory");
        return 0;
    }
#define GROUP(i) (4 * (Py_ssize_t)quant_of_block[i] + shape_class(job, i))
    for (Py_ssize_t i = 0; i < nblocks; i++) start[GROUP(i) + 1]++;
    for (Py_ssize_t g = 0; g < ngroups; g++) start[g + 1] += start[g];
    for (Py_ssize_t i = 0; i < nblocks; i++) order[start[GROUP(i)]++] = i;
#undef GROUP
    Py_ssize_t lo = 0;
    Py_ssize_t failed = -1;
    for (Py_ssize_t g = 0; g < ngroups && failed < 0; g++) {
        const int q = (int)(g / 4);
        Py_ssize_t hi = start[g]; /* after the fill above, start[g] is the end of group g */
        for (Py_ssize_t s = lo; s < hi && failed < 0; s += per_strip) {
            Py_ssize_t n = hi - s < per_strip ? hi - s : per_strip;
            if (decode_strip(job, order + s, n, q) == 0) continue;
            __atomic_fetch_add(&strip_fallbacks, 1, __ATOMIC_RELAXED);
            for (Py_ssize_t k = 0; k < n; k++) { /* find the culprit the way anyone would */
                /* a one-block strip has no restart marker: it is the standalone scan */
                if (decode_strip(job, order + s + k, 1, q) != 0) {
                    failed = order[s + k];
                    break;
                }
            }
        }
        lo = hi;
    }
    free(start);
    return failed;
}

/* Load the shared Huffman tables from a tables-only datastream; give slots 0 and 1 quant tables
 * that are overwritten per strip. Returns 0, or -1 with err->message set. */
static int load_tables(struct jpeg_decompress_struct *cinfo, ErrorManager *err,
                       const unsigned char *tables, size_t tables_len) {
    if (setjmp(err->jump)) {
        jpeg_abort_decompress(cinfo);
        return -1;
    }
    jpeg_mem_src(cinfo, tables, (unsigned long)tables_len);
    if (jpeg_read_header(cinfo, FALSE) != JPEG_HEADER_TABLES_ONLY) {
        snprintf(err->message, sizeof err->message, "the tables stream holds an image");
        jpeg_abort_decompress(cinfo);
        return -1;
    }
    for (int t = 0; t < 2; t++) {
        if (cinfo->quant_tbl_ptrs[t] == NULL) {
            cinfo->quant_tbl_ptrs[t] = jpeg_alloc_quant_table((j_common_ptr)cinfo);
        }
    }
    return 0;
}

/* ---- Python entry point ----------------------------------------------------------------- */

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize,
                      Py_ssize_t count, const char *name) {
    if (PyObject_GetBuffer(obj, view, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS) < 0) {
        return -1;
    }
    if (count >= 0 && view->len != itemsize * count) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd bytes, got %zd", name, itemsize * count,
                     view->len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *decode_blocks(PyObject *self, PyObject *args) {
    PyObject *data_obj, *tables_obj, *quant_obj, *qob_obj, *off_obj, *len_obj, *out_obj;
    Py_ssize_t rows, cols;
    PyObject *rebuild_obj = Py_None;
    int block, h, last_h, last_w, mode;
    if (!PyArg_ParseTuple(args, "OOOOOOOnniiiii|O", &data_obj, &tables_obj, &quant_obj,
                          &qob_obj, &off_obj, &len_obj, &out_obj, &rows, &cols, &block, &h,
                          &last_h, &last_w, &mode, &rebuild_obj)) {
        return NULL;
    }
    if (mode < SCAN_STUFFED || mode > SCAN_REBUILD ||
        (mode == SCAN_REBUILD) != (rebuild_obj != Py_None)) {
        return PyErr_Format(PyExc_ValueError, "bad scan mode %d", mode);
    }
    if (rows <= 0 || cols <= 0 || (block != 16 && block != 32 && block != 64) ||
        (h != 1 && h != 2) || rows > (1 << 20) / block || cols > (1 << 20) / block ||
        last_h < 1 || last_h > block || last_w < 1 || last_w > block) {
        return PyErr_Format(PyExc_ValueError, "bad grid %zd x %zd of %d-pixel blocks (h=%d)",
                            rows, cols, block, h);
    }
    const Py_ssize_t n = rows * cols;
    Py_buffer data = {0}, tables = {0}, quant = {0}, qob = {0}, off = {0}, len = {0}, out = {0},
              ybuf = {0}, cbbuf = {0}, crbuf = {0}, lev = {0}, slen = {0}, huff = {0},
              ins = {0};
    unsigned char *scratch = NULL, *planes = NULL;
    Py_ssize_t *order = NULL;
    PyObject *result = NULL;

    if (get_buffer(data_obj, &data, 0, 1, -1, "data") < 0) return NULL;
    if (get_buffer(tables_obj, &tables, 0, 1, -1, "tables") < 0) goto done;
    if (get_buffer(quant_obj, &quant, 0, 1, -1, "quant") < 0) goto done;
    if (get_buffer(qob_obj, &qob, 0, 4, n, "quant_of_block") < 0) goto done;
    if (get_buffer(off_obj, &off, 0, 8, n, "offsets") < 0) goto done;
    if (get_buffer(len_obj, &len, 0, 8, n, "lengths") < 0) goto done;
    if (mode == SCAN_REBUILD) {
        if (!PyTuple_Check(rebuild_obj) || PyTuple_GET_SIZE(rebuild_obj) != 4) {
            PyErr_SetString(PyExc_ValueError,
                            "rebuild: expected (levels, scan_lengths, huff, insert_at)");
            goto done;
        }
        if (get_buffer(PyTuple_GET_ITEM(rebuild_obj, 0), &lev, 0, 2, 3 * n, "levels") < 0 ||
            get_buffer(PyTuple_GET_ITEM(rebuild_obj, 1), &slen, 0, 8, n, "scan_lengths") < 0 ||
            get_buffer(PyTuple_GET_ITEM(rebuild_obj, 2), &huff, 0, 4, H_SIZE, "huff") < 0 ||
            get_buffer(PyTuple_GET_ITEM(rebuild_obj, 3), &ins, 0, 8, 3 * n, "insert_at") < 0) {
            goto done;
        }
    }
    /* ``out``: the RGB grid, or a tuple (Y, Cb, Cr) of plane buffers for seamless decoding */
    const int seamless = PyTuple_Check(out_obj);
    const Py_ssize_t c = block / h;
    if (seamless) {
        if (PyTuple_GET_SIZE(out_obj) != 3) {
            PyErr_SetString(PyExc_ValueError, "planes: expected (Y, Cb, Cr)");
            goto done;
        }
        if (get_buffer(PyTuple_GET_ITEM(out_obj, 0), &ybuf, 1, (Py_ssize_t)block * block, n, "Y") <
                0 ||
            get_buffer(PyTuple_GET_ITEM(out_obj, 1), &cbbuf, 1, c * c, n, "Cb") < 0 ||
            get_buffer(PyTuple_GET_ITEM(out_obj, 2), &crbuf, 1, c * c, n, "Cr") < 0) {
            goto done;
        }
    } else if (get_buffer(out_obj, &out, 1, (Py_ssize_t)block * block * 3, n, "out") < 0) {
        goto done;
    }

    const Py_ssize_t nq = quant.len / (128 * (Py_ssize_t)sizeof(uint16_t));
    if (nq < 1 || quant.len != nq * 128 * (Py_ssize_t)sizeof(uint16_t)) {
        PyErr_SetString(PyExc_ValueError, "quant must hold (n, 2, 64) uint16 tables");
        goto done;
    }
    const uint16_t *quantv = quant.buf;
    for (Py_ssize_t k = 0; k < nq * 128; k++) {
        if (quantv[k] < 1 || quantv[k] > 255) {
            PyErr_SetString(PyExc_ValueError, "quantisation values must be in 1..255");
            goto done;
        }
    }
    const int32_t *qobv = qob.buf;
    const int64_t *offv = off.buf, *lenv = len.buf;
    int64_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (qobv[i] < 0 || qobv[i] >= nq) {
            PyErr_Format(PyExc_ValueError, "block %zd: quant table index %d out of range", i,
                         (int)qobv[i]);
            goto done;
        }
        if (offv[i] < 0 || lenv[i] < 0 || offv[i] > data.len || lenv[i] > data.len - offv[i]) {
            PyErr_Format(PyExc_ValueError, "block %zd: segment outside the data", i);
            goto done;
        }
        if (mode == SCAN_REBUILD) { /* the rebuilt scan is at most 11 bytes longer */
            const int64_t scan = ((const int64_t *)slen.buf)[i];
            if (scan < 0 || scan > lenv[i] + 16) {
                PyErr_Format(PyExc_ValueError, "block %zd: bad scan length", i);
                goto done;
            }
            total += 2 * scan + 2; /* scan, stuffing, restart marker */
        } else {
            total += (mode == SCAN_UNSTUFFED ? 2 : 1) * lenv[i] + 2;
        }
    }
    scratch = PyMem_Malloc((size_t)(HEADERS_MAX + total + 2));
    planes = PyMem_Malloc(3 * MAX_BLOCK * MAX_BLOCK);
    order = PyMem_Malloc((size_t)n * sizeof *order);
    if (!scratch || !planes || !order) {
        PyErr_NoMemory();
        goto done;
    }

    struct jpeg_decompress_struct cinfo;
    ErrorManager err;
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    if (setjmp(err.jump)) { /* jpeg_create_decompress itself failed (out of memory) */
        PyErr_SetString(PyExc_MemoryError, err.message);
        goto done;
    }
    jpeg_create_decompress(&cinfo);
    Job job = {.cinfo = &cinfo, .err = &err, .data = data.buf, .quant = quantv,
               .offsets = offv, .lengths = lenv, .out = out.buf, .rows = rows, .cols = cols,
               .stride = cols * block * 3, .b = block, .h = h, .last_h = last_h,
               .last_w = last_w, .mode = mode, .levels = lev.buf, .scan_lengths = slen.buf, .insert_at = ins.buf, .huff = huff.buf, .scratch = scratch, .planes = planes, .yplane = ybuf.buf,
               .cbplane = cbbuf.buf, .crplane = crbuf.buf};
    Py_ssize_t failed = -2;
    Py_BEGIN_ALLOW_THREADS
    if (load_tables(&cinfo, &err, tables.buf, (size_t)tables.len) == 0) {
        failed = decode_all(&job, qobv, nq, n, order);
    }
    Py_END_ALLOW_THREADS
    jpeg_destroy_decompress(&cinfo);
    if (failed == -2) {
        PyErr_Format(PyExc_ValueError, "tables: %s", err.message);
        goto done;
    }
    if (failed >= 0) {
        PyErr_Format(PyExc_ValueError, "block (%zd, %zd): %s", failed / cols, failed % cols,
                     err.message);
        goto done;
    }
    result = Py_NewRef(Py_None);

done:
    PyMem_Free(scratch);
    PyMem_Free(planes);
    PyMem_Free(order);
    Py_buffer *views[] = {&data, &tables, &quant, &qob, &off, &len,  &out,
                          &ybuf, &cbbuf,  &crbuf, &lev,  &slen, &huff, &ins};
    for (size_t k = 0; k < sizeof views / sizeof *views; k++) {
        if (views[k]->obj) PyBuffer_Release(views[k]);
    }
    return result;
}

static PyObject *planes_to_rgb(PyObject *self, PyObject *args) {
    PyObject *y_obj, *cb_obj, *cr_obj, *out_obj;
    Py_ssize_t ystride, cstride, width, height, row_lo, row_hi;
    int h;
    if (!PyArg_ParseTuple(args, "OOOnninnnnO", &y_obj, &cb_obj, &cr_obj, &ystride, &cstride, &h,
                          &width, &height, &row_lo, &row_hi, &out_obj)) {
        return NULL;
    }
    if ((h != 1 && h != 2) || width <= 0 || height <= 0 || ystride < width ||
        cstride < (width + h - 1) / h || row_lo < 0 || row_lo > row_hi || row_hi > height) {
        return PyErr_Format(PyExc_ValueError, "bad geometry");
    }
    const Py_ssize_t crows = (height + h - 1) / h;
    Py_buffer y = {0}, cb = {0}, cr = {0}, out = {0};
    PyObject *result = NULL;
    if (get_buffer(y_obj, &y, 0, 1, -1, "Y") < 0) return NULL;
    if (get_buffer(cb_obj, &cb, 0, 1, -1, "Cb") < 0) goto done;
    if (get_buffer(cr_obj, &cr, 0, 1, -1, "Cr") < 0) goto done;
    if (get_buffer(out_obj, &out, 1, 3 * width, height, "out") < 0) goto done;
    if (y.len < height * ystride || cb.len < crows * cstride || cr.len < crows * cstride) {
        PyErr_SetString(PyExc_ValueError, "planes smaller than the image");
        goto done;
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = image_to_rgb(y.buf, cb.buf, cr.buf, ystride, cstride, h, width, height, row_lo,
                          row_hi, out.buf, 3 * width);
    Py_END_ALLOW_THREADS
    if (status != 0) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    if (y.obj) PyBuffer_Release(&y);
    if (cb.obj) PyBuffer_Release(&cb);
    if (cr.obj) PyBuffer_Release(&cr);
    if (out.obj) PyBuffer_Release(&out);
    return result;
}

static PyObject *fallbacks(PyObject *self, PyObject *unused) {
    return PyLong_FromLong(__atomic_load_n(&strip_fallbacks, __ATOMIC_RELAXED));
}

static PyMethodDef methods[] = {
    {"decode_blocks", decode_blocks, METH_VARARGS,
     "Decode every block of a container into one image (see the module source)."},
    {"planes_to_rgb", planes_to_rgb, METH_VARARGS,
     "Rows of the whole image from its planes, chroma upsampled across block edges."},
    {"fallbacks", fallbacks, METH_NOARGS,
     "How many strips failed and were redone one standalone block at a time."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_blockdecode",
    "Decode a container's blocks with one libjpeg decompressor.", -1, methods,
};

PyMODINIT_FUNC PyInit__blockdecode(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "JPEG_LIB_VERSION", JPEG_LIB_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
