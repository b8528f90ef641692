/*
 * accelir.codec._blockdecode: decode every block of a container with one libjpeg decompressor.
 *
 * Each block is decoded as the standalone baseline JPEG that ``block_jpeg`` returns (the block's
 * header, its entropy-coded segment, EOI), so the pixels are exactly what libjpeg-turbo makes of
 * that file. What this saves over one decoder call per block from Python: one decompressor serves
 * every block, tables are parsed once, scanlines go straight into the output image (no paste),
 * and the GIL is released for the whole loop.
 *
 * The shared Huffman tables are loaded once from a tables-only datastream (libjpeg keeps them
 * across images), and each block's quantisation tables are written into the decompressor's two
 * table slots, so a block's datastream is only SOI, SOF0, SOS, its segment and EOI; libjpeg then
 * decodes exactly what it decodes from the block's standalone JPEG (same tables, same data).
 *
 * decode_blocks(data, tables, frame, quant, quant_of_block, offsets, lengths, out, rows, cols,
 *               block)
 *   data             bytes-like: the container's entropy-coded segments
 *   tables           bytes: SOI, DHT (the container's shared tables), EOI
 *   frame            bytes: SOI, SOF0 (block x block), SOS: what precedes every segment
 *   quant            uint16 buffer (n, 2, 64): luma and chroma tables in natural order
 *   quant_of_block   int32 buffer (rows*cols): index into quant per block, row-major
 *   offsets, lengths int64 buffers (rows*cols): each block's segment inside data
 *   out              writable C-contiguous uint8 buffer of (rows*block) x (cols*block) x 3
 * Raises ValueError("block (r, c): ...") on corrupt data; libjpeg warnings count as errors.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

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

static const unsigned char EOI[2] = {0xFF, 0xD9};

/* Returns -1 on success, else the index of the failing block (message in err). */
static Py_ssize_t decode_all(struct jpeg_decompress_struct *cinfo, ErrorManager *err,
                             const unsigned char *data, const unsigned char *frame,
                             size_t frame_len, const uint16_t *quant, const int32_t *quant_of_block,
                             const int64_t *offsets, const int64_t *lengths, unsigned char *out,
                             Py_ssize_t rows, Py_ssize_t cols, int block, unsigned char *scratch) {
    const Py_ssize_t stride = cols * block * 3;
    JSAMPROW rowptr[64];
    unsigned char tile[64 * 64 * 3];
    volatile Py_ssize_t i = 0;
    const Py_ssize_t n = rows * cols;
    for (int y = 0; y < block; y++) {
        rowptr[y] = tile + y * block * 3;
    }

    if (setjmp(err->jump)) {
        jpeg_abort_decompress(cinfo);
        return i;
    }
    memcpy(scratch, frame, frame_len);
    for (; i < n; i++) {
        const uint16_t *q = quant + (size_t)quant_of_block[i] * 128;
        for (int t = 0; t < 2; t++) {
            memcpy(cinfo->quant_tbl_ptrs[t]->quantval, q + 64 * t, 64 * sizeof(UINT16));
        }
        const size_t sl = (size_t)lengths[i];
        memcpy(scratch + frame_len, data + offsets[i], sl);
        memcpy(scratch + frame_len + sl, EOI, 2);
        jpeg_mem_src(cinfo, scratch, (unsigned long)(frame_len + sl + 2));
        jpeg_read_header(cinfo, TRUE);
        if ((int)cinfo->image_width != block || (int)cinfo->image_height != block ||
            cinfo->num_components != 3) {
            snprintf(err->message, sizeof err->message, "header is not a %dx%d colour block",
                     block, block);
            jpeg_abort_decompress(cinfo);
            return i;
        }
        cinfo->out_color_space = JCS_RGB;
        cinfo->dct_method = JDCT_ISLOW;
        cinfo->do_fancy_upsampling = TRUE;
        jpeg_start_decompress(cinfo);
        while (cinfo->output_scanline < cinfo->output_height) {
            jpeg_read_scanlines(cinfo, rowptr + cinfo->output_scanline,
                                cinfo->output_height - cinfo->output_scanline);
        }
        jpeg_finish_decompress(cinfo);
        /* Pixels land in a small tile that stays in L1 while libjpeg works, then go out as
         * whole rows: writing straight into the image scattered each block over 32 rows of it
         * (32 pages) during decoding and measured slower. */
        unsigned char *origin = out + (i / cols) * block * stride + (i % cols) * block * 3;
        for (int y = 0; y < block; y++) {
            memcpy(origin + y * stride, tile + y * block * 3, (size_t)block * 3);
        }
    }
    return -1;
}

/* Load the shared Huffman tables from a tables-only datastream; give slots 0 and 1 quant tables
 * that decode_all overwrites per block. Returns 0, or -1 with err->message set. */
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
    PyObject *data_obj, *tables_obj, *frame_obj, *quant_obj, *qob_obj, *off_obj, *len_obj,
        *out_obj;
    Py_ssize_t rows, cols;
    int block;
    if (!PyArg_ParseTuple(args, "OOOOOOOOnni", &data_obj, &tables_obj, &frame_obj, &quant_obj,
                          &qob_obj, &off_obj, &len_obj, &out_obj, &rows, &cols, &block)) {
        return NULL;
    }
    if (rows <= 0 || cols <= 0 || block <= 0 || block > 64 || rows > (1 << 20) / block ||
        cols > (1 << 20) / block) {
        return PyErr_Format(PyExc_ValueError, "bad grid %zd x %zd of %d-pixel blocks", rows,
                            cols, block);
    }
    const Py_ssize_t n = rows * cols;
    Py_buffer data = {0}, tables = {0}, frame = {0}, quant = {0}, qob = {0}, off = {0}, len = {0},
              out = {0};
    unsigned char *scratch = NULL;
    PyObject *result = NULL;

    if (get_buffer(data_obj, &data, 0, 1, -1, "data") < 0) return NULL;
    if (get_buffer(tables_obj, &tables, 0, 1, -1, "tables") < 0) goto done;
    if (get_buffer(frame_obj, &frame, 0, 1, -1, "frame") < 0) goto done;
    if (get_buffer(quant_obj, &quant, 0, 1, -1, "quant") < 0) goto done;
    if (get_buffer(qob_obj, &qob, 0, 4, n, "quant_of_block") < 0) goto done;
    if (get_buffer(off_obj, &off, 0, 8, n, "offsets") < 0) goto done;
    if (get_buffer(len_obj, &len, 0, 8, n, "lengths") < 0) goto done;
    if (get_buffer(out_obj, &out, 1, (Py_ssize_t)block * block * 3, n, "out") < 0) goto done;

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
    int64_t max_segment = 0;
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
        if (lenv[i] > max_segment) max_segment = lenv[i];
    }
    scratch = PyMem_Malloc((size_t)(frame.len + max_segment + 2));
    if (!scratch) {
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
    Py_ssize_t failed = -2;
    Py_BEGIN_ALLOW_THREADS
    if (load_tables(&cinfo, &err, tables.buf, (size_t)tables.len) == 0) {
        failed = decode_all(&cinfo, &err, data.buf, frame.buf, (size_t)frame.len, quantv, qobv,
                            offv, lenv, out.buf, rows, cols, block, scratch);
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
    Py_buffer *views[] = {&data, &tables, &frame, &quant, &qob, &off, &len, &out};
    for (size_t k = 0; k < sizeof views / sizeof *views; k++) {
        if (views[k]->obj) PyBuffer_Release(views[k]);
    }
    return result;
}

static PyMethodDef methods[] = {
    {"decode_blocks", decode_blocks, METH_VARARGS,
     "Decode every block's standalone JPEG into one image (see the module source)."},
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
