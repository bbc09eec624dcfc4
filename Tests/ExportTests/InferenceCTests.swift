// The strongest check of the firmware tables: a small integer inference written in C here (from
// docs/DATAPATH.md, using only model.h's node table), compiled against the exported model.c,
// must give the same logits as the Kernels engine, bit for bit.
import XCTest
import DataIO
import Export
import Kernels
import ModelFile
import Randomness

final class InferenceCTests: XCTestCase {
    static let inferMain = #"""
    #include <inttypes.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include "model.h"

    /* DATAPATH.md section 0 */
    static int64_t rsr(int64_t x, int s, int rule) {
        int64_t p, q, r, h;
        if (s == 0) return x;
        p = (int64_t)1 << s;
        q = x >= 0 ? x / p : -((-x + p - 1) / p);   /* floor(x / 2^s) without shifting negatives */
        r = x - q * p;
        h = p / 2;
        switch (rule) {
        case RRAM_ROUND_FLOOR: return q;
        case RRAM_ROUND_TOWARD_ZERO: return q + (x < 0 && r != 0);
        case RRAM_ROUND_HALF_UP: return q + (r >= h);
        case RRAM_ROUND_HALF_AWAY_FROM_ZERO: return q + (r > h || (r == h && x > 0));
        default: return q + (r > h || (r == h && (q & 1) != 0));
        }
    }

    static int64_t clamp64(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : (x > hi ? hi : x); }

    /* FIXEDPOINT.md roundingDivide: x / d, d >= 1, the rounding table with 2r against d */
    static int64_t rdiv(int64_t x, int64_t d, int rule) {
        int64_t q = x >= 0 ? x / d : -((-x + d - 1) / d), r = x - q * d;
        switch (rule) {
        case RRAM_ROUND_FLOOR: return q;
        case RRAM_ROUND_TOWARD_ZERO: return q + (x < 0 && r != 0);
        case RRAM_ROUND_HALF_UP: return q + (2 * r >= d);
        case RRAM_ROUND_HALF_AWAY_FROM_ZERO: return q + (2 * r > d || (2 * r == d && x > 0));
        default: return q + (2 * r > d || (2 * r == d && (q & 1) != 0));
        }
    }

    int main(int argc, char **argv) {
        int64_t *t[RRAM_TENSOR_COUNT];
        int images = atoi(argv[1]), img, n, i;
        (void)argc;
        for (n = 0; n < RRAM_TENSOR_COUNT; n++)
            t[n] = calloc((size_t)(rram_tensors[n].c * rram_tensors[n].h * rram_tensors[n].w), sizeof(int64_t));
        for (img = 0; img < images; img++) {
            for (i = 0; i < RRAM_INPUT_C * RRAM_INPUT_H * RRAM_INPUT_W; i++) {
                int v = getchar();
                if (v == EOF) return 3;
                t[RRAM_INPUT_TENSOR][i] = v;
            }
            for (n = 0; n < RRAM_NODE_COUNT; n++) {
                const rram_node_t *d = &rram_nodes[n];
                const rram_tensor_t *is = &rram_tensors[d->input], *os = &rram_tensors[d->output];
                const int64_t *in = t[d->input];
                int64_t *out = t[d->output];
                int c, y, x, o;
                switch (d->op) {
                case RRAM_OP_INPUT_QUANT:
                case RRAM_OP_ACTIVATION:
                    for (c = 0; c < is->c; c++)
                        for (i = 0; i < is->h * is->w; i++) {
                            int64_t v = in[c * is->h * is->w + i] * d->multiplier[c] + d->offset[c];
                            out[c * is->h * is->w + i] = clamp64(rsr(v, d->shift[c], d->rounding), 0, ((int64_t)1 << d->out_bits) - 1);
                        }
                    break;
                case RRAM_OP_MAX_POOL:
                    for (c = 0; c < os->c; c++)
                        for (y = 0; y < os->h; y++)
                            for (x = 0; x < os->w; x++) {
                                int64_t m = in[(c * is->h + y * d->pool_sh) * is->w + x * d->pool_sw];
                                int ky, kx;
                                for (ky = 0; ky < d->pool_kh; ky++)
                                    for (kx = 0; kx < d->pool_kw; kx++) {
                                        int64_t v = in[(c * is->h + y * d->pool_sh + ky) * is->w + x * d->pool_sw + kx];
                                        if (v > m) m = v;
                                    }
                                out[(c * os->h + y) * os->w + x] = m;
                            }
                    break;
                case RRAM_OP_FLATTEN:
                    for (i = 0; i < is->c * is->h * is->w; i++) out[i] = in[i];
                    break;
                case RRAM_OP_CROSSBAR:
                    for (o = 0; o < d->out_channels; o++)
                        for (y = 0; y < os->h; y++)
                            for (x = 0; x < os->w; x++) {
                                int64_t sum = 0;
                                int k;
                                for (k = 0; k < d->tile_count; k++) {
                                    const rram_tile_adc_t *tl = &d->tiles[k];
                                    int64_t acc = 0, v, lim;
                                    int r;
                                    for (r = tl->row_start; r < tl->row_start + tl->row_count; r++) {
                                        int ci = r / (d->kernel_h * d->kernel_w);
                                        int ky = (r / d->kernel_w) % d->kernel_h, kx = r % d->kernel_w;
                                        int iy = y * d->stride_h - d->pad_h + ky, ix = x * d->stride_w - d->pad_w + kx;
                                        if (iy >= 0 && iy < is->h && ix >= 0 && ix < is->w)
                                            acc += in[(ci * is->h + iy) * is->w + ix] * d->weights[o * d->fan_in + r];
                                    }
                                    v = rsr(acc * tl->multiplier, 31 - tl->shift, tl->rounding);
                                    lim = (int64_t)1 << (tl->bits - 1);
                                    sum += clamp64(v, -lim, lim - 1);
                                }
                                out[(o * os->h + y) * os->w + x] = sum;
                            }
                    break;
                case RRAM_OP_RNN: {
                    /* DATAPATH.md section 15; input (I,1,T): x_t[c] = in[c*T + t] */
                    int T = is->w, hd = d->out_channels, t2, k;
                    int64_t q[512], z[512], sum[512], s2[2];
                    if (hd > 512) return 5;
                    for (o = 0; o < hd; o++) { q[o] = 0; sum[o] = 0; }
                    for (t2 = 0; t2 < T; t2++) {
                        for (o = 0; o < hd; o++) {
                            int m;
                            for (m = 0; m < 2; m++) {
                                const rram_tile_adc_t *tiles = m == 0 ? d->tiles : d->recurrent_tiles;
                                const int8_t *w = m == 0 ? d->weights : d->recurrent_weights;
                                int nt = m == 0 ? d->tile_count : d->recurrent_tile_count, fan = m == 0 ? d->fan_in : hd;
                                s2[m] = 0;
                                for (k = 0; k < nt; k++) {
                                    int64_t acc = 0, v, lim;
                                    int r;
                                    for (r = tiles[k].row_start; r < tiles[k].row_start + tiles[k].row_count; r++)
                                        acc += (m == 0 ? in[r * T + t2] : q[r]) * w[o * fan + r];
                                    v = rsr(acc * tiles[k].multiplier, 31 - tiles[k].shift, tiles[k].rounding);
                                    lim = (int64_t)1 << (tiles[k].bits - 1);
                                    s2[m] += clamp64(v, -lim, lim - 1);
                                }
                            }
                            z[o] = s2[0] * d->rnn_input_multiplier + s2[1] * d->rnn_recurrent_multiplier;
                        }
                        for (o = 0; o < hd; o++) {
                            if (t2 < T - 1) {
                                q[o] = clamp64(rsr(z[o], d->rnn_state_shift, d->rnn_hidden_rounding), 0, ((int64_t)1 << d->rnn_hidden_bits) - 1);
                                sum[o] += q[o];
                            }
                        }
                    }
                    for (o = 0; o < hd; o++) {
                        int64_t a = sum[o] * ((int64_t)1 << d->rnn_state_shift) + (z[o] > 0 ? z[o] : 0);
                        out[o] = clamp64(rsr(a * d->multiplier[o] + d->offset[o], d->shift[o], d->rounding), 0, ((int64_t)1 << d->out_bits) - 1);
                    }
                    break;
                }
                case RRAM_OP_ADD: {
                    /* DATAPATH.md section 16 */
                    const int64_t *b = t[d->inputs[1]];
                    for (c = 0; c < is->c; c++)
                        for (i = 0; i < is->h * is->w; i++) {
                            int k = c * is->h * is->w + i;
                            int64_t v = in[k] * d->multiplier[c] + b[k] * d->second_multiplier[c] + d->offset[c];
                            out[k] = clamp64(rsr(v, d->shift[c], d->rounding), 0, ((int64_t)1 << d->out_bits) - 1);
                        }
                    break;
                }
                case RRAM_OP_CONCAT: {
                    /* section 17: the inputs' channels in order, channel c0 + c requantized by entry c0 + c */
                    int j, c0 = 0, hw = os->h * os->w;
                    for (j = 0; j < d->input_count; j++) {
                        const rram_tensor_t *js = &rram_tensors[d->inputs[j]];
                        const int64_t *x0 = t[d->inputs[j]];
                        for (c = 0; c < js->c; c++)
                            for (i = 0; i < hw; i++) {
                                int64_t v = x0[c * hw + i] * d->multiplier[c0 + c] + d->offset[c0 + c];
                                out[(c0 + c) * hw + i] = clamp64(rsr(v, d->shift[c0 + c], d->rounding), 0, ((int64_t)1 << d->out_bits) - 1);
                            }
                        c0 += js->c;
                    }
                    break;
                }
                case RRAM_OP_UPSAMPLE_BILINEAR: {
                    /* section 18: aligned corners, D = max(out - 1, 1) per axis */
                    int64_t dy = os->h > 1 ? os->h - 1 : 1, dx = os->w > 1 ? os->w - 1 : 1;
                    for (c = 0; c < os->c; c++)
                        for (y = 0; y < os->h; y++)
                            for (x = 0; x < os->w; x++) {
                                int64_t sy = (int64_t)y * (is->h - 1), sx = (int64_t)x * (is->w - 1);
                                int iy = (int)(sy / dy), ix = (int)(sx / dx);
                                int64_t fy = sy % dy, fx = sx % dx;
                                int iy1 = iy + 1 < is->h ? iy + 1 : iy, ix1 = ix + 1 < is->w ? ix + 1 : ix;
                                const int64_t *p0 = in + (c * is->h + iy) * is->w, *p1 = in + (c * is->h + iy1) * is->w;
                                int64_t num = (dy - fy) * (dx - fx) * p0[ix] + (dy - fy) * fx * p0[ix1] + fy * (dx - fx) * p1[ix] + fy * fx * p1[ix1];
                                out[(c * os->h + y) * os->w + x] = os->kind == RRAM_KIND_SUM ? num : rdiv(num, dy * dx, d->rounding);
                            }
                    break;
                }
                case RRAM_OP_GLOBAL_AVG_POOL:
                    /* section 19 */
                    for (c = 0; c < is->c; c++) {
                        int64_t sum = 0;
                        for (i = 0; i < is->h * is->w; i++) sum += in[c * is->h * is->w + i];
                        out[c] = is->kind == RRAM_KIND_CODE && os->kind == RRAM_KIND_SUM ? sum : rdiv(sum, (int64_t)is->h * is->w, d->rounding);
                    }
                    break;
                default:
                    return 4;
                }
            }
            for (i = 0; i < RRAM_OUTPUT_COUNT; i++) printf("%s%" PRId64, i ? " " : "", t[RRAM_OUTPUT_TENSOR][i]);
            printf("\n");
        }
        return 0;
    }
    """#

    func checkInference(_ b: ModelBundle, dir: String, images: Int, seed: UInt64) throws {
        guard let gcc = tool("gcc") else { throw XCTSkip("gcc not installed: the C inference test is skipped") }
        let work = tempDir("infer")
        let flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-I", dir]
        try writeFileAtomically(Array(Self.inferMain.utf8), to: work + "/infer.c")
        let c = try runTool(gcc, flags + [dir + "/model.c", work + "/infer.c", "-o", work + "/infer"])
        XCTAssertEqual(c.status, 0, c.err)
        var rng = Xoshiro256StarStar(seed: seed)
        let n = b.program.tensors[b.program.input].shape.count
        let pixels = (0..<(images * n)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        try writeFileAtomically(pixels, to: work + "/pixels.bin")
        let r = try runTool("/bin/sh", ["-c", "'\(work)/infer' \(images) < '\(work)/pixels.bin'"])
        XCTAssertEqual(r.status, 0, r.err)
        let got = r.out.split(separator: "\n").map { $0.split(separator: " ").map { Int32($0)! } }
        let engine = try Engine(program: b.program)
        let want = engine.inferBatch(pixels, count: images).logits
        let outs = want.count / images
        XCTAssertEqual(got.count, images)
        for i in 0..<min(images, got.count) {
            XCTAssertEqual(got[i], Array(want[(i * outs)..<((i + 1) * outs)]), "image \(i)")
        }
        XCTAssertGreaterThan(Set(want).count, 2, "degenerate logits make a weak test")
    }

    func testCInferenceOverTheExportedTablesMatchesTheEngine() throws {
        let f = fixture("fashion")
        try checkInference(f.bundle, dir: f.dir, images: 3, seed: 1)
    }

    func testCRNNCInferenceMatchesTheEngine() throws {
        let f = fixture("crnn")
        try checkInference(f.bundle, dir: f.dir, images: 8, seed: 3)
    }

    func testGraphCInferenceMatchesTheEngine() throws {
        // add, concat (codes and exact upsampled sums), both upsampling forms, global average
        // pooling, per-pixel logits: the C written from the docs reads every field it needs
        try checkInference(fixture("unet").bundle, dir: fixture("unet").dir, images: 3, seed: 4)
        try checkInference(fixture("resnet").bundle, dir: fixture("resnet").dir, images: 6, seed: 5)
    }

    func testSmallModelCInference() throws {
        let f = fixture("small")
        try checkInference(f.bundle, dir: f.dir, images: 8, seed: 2)
    }
}
