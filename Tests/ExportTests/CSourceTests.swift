// The firmware C: compiled with gcc -std=c99 -Wall -Wextra -Werror -pedantic together with a
// test program that prints every value through the node table; the printout is compared with
// the model.
import XCTest
@testable import Export
import DataIO
import Kernels
import ModelFile

final class CSourceTests: XCTestCase {
    static let dumpMain = """
    #include <inttypes.h>
    #include <stdio.h>
    #include <string.h>
    #include "model.h"

    int main(void) {
        int n, i;
        printf("G %d %d %d %d %d %d %d %d %d %d %d %d\\n", RRAM_TENSOR_COUNT, RRAM_NODE_COUNT, RRAM_CROSSBAR_COUNT,
               RRAM_INPUT_TENSOR, RRAM_OUTPUT_TENSOR, RRAM_ARRAY_ROWS, RRAM_ARRAY_COLS, RRAM_ARRAY_COUNT,
               RRAM_PLACEMENT_TILE_COUNT, RRAM_ROM_ENTRIES, RRAM_INPUT_C * RRAM_INPUT_H * RRAM_INPUT_W, RRAM_OUTPUT_COUNT);
        printf("S %u", (unsigned)strlen(RRAM_MODEL_TASK));
        for (i = 0; RRAM_MODEL_TASK[i]; i++) printf(" %u", (unsigned)(unsigned char)RRAM_MODEL_TASK[i]);
        printf("\\n");
        for (n = 0; n < RRAM_TENSOR_COUNT; n++) {
            const rram_tensor_t *t = &rram_tensors[n];
            printf("T %d %d %d %d %d\\n", (int)t->c, (int)t->h, (int)t->w, t->kind, t->bits);
        }
        for (n = 0; n < RRAM_NODE_COUNT; n++) {
            const rram_node_t *d = &rram_nodes[n];
            printf("N %d %d %d %d %d\\n", d->op, (int)d->input, (int)d->output, (int)d->rom_first, (int)d->rom_count);
            printf("I");
            for (i = 0; i < d->input_count; i++) printf(" %d", (int)d->inputs[i]);
            printf("\\n");
            if (d->op == RRAM_OP_INPUT_QUANT || d->op == RRAM_OP_ACTIVATION || d->op == RRAM_OP_RNN || d->op == RRAM_OP_ADD
                || d->op == RRAM_OP_CONCAT) {
                printf("A %d %d\\n", (int)d->out_bits, d->rounding);
                for (i = 0; i < d->channels; i++)
                    printf("C %" PRId32 " %" PRId32 " %" PRId64 "\\n", d->multiplier[i], d->shift[i], d->offset[i]);
            }
            if (d->op == RRAM_OP_ADD)
                for (i = 0; i < d->channels; i++) printf("Q %" PRId32 "\\n", d->second_multiplier[i]);
            if (d->op == RRAM_OP_UPSAMPLE_BILINEAR) printf("U %d %d %d\\n", (int)d->factor_h, (int)d->factor_w, d->rounding);
            if (d->op == RRAM_OP_GLOBAL_AVG_POOL) printf("G %d\\n", d->rounding);
            if (d->op == RRAM_OP_MAX_POOL) printf("P %d %d %d %d\\n", (int)d->pool_kh, (int)d->pool_kw, (int)d->pool_sh, (int)d->pool_sw);
            if (d->op == RRAM_OP_CROSSBAR || d->op == RRAM_OP_RNN) {
                printf("X %d %d %d %d %d %d %d %d %d %d %d\\n", (int)d->layer, (int)d->in_channels, (int)d->out_channels,
                       (int)d->kernel_h, (int)d->kernel_w, (int)d->stride_h, (int)d->stride_w, (int)d->pad_h, (int)d->pad_w,
                       (int)d->weight_bits, (int)d->fan_in);
                printf("W");
                for (i = 0; i < d->out_channels * d->fan_in; i++) printf(" %d", d->weights[i]);
                printf("\\nM ");
                for (i = 0; i < d->out_channels * d->fan_in; i++) putchar(d->mask == NULL ? 'n' : ((d->mask[i >> 3] >> (i & 7)) & 1) ? '1' : '0');
                printf("\\n");
                for (i = 0; i < d->tile_count; i++)
                    printf("D %d %d %" PRId32 " %" PRId32 " %d %d\\n", (int)d->tiles[i].row_start, (int)d->tiles[i].row_count,
                           d->tiles[i].multiplier, d->tiles[i].shift, d->tiles[i].rounding, d->tiles[i].bits);
            }
            if (d->op == RRAM_OP_RNN) {
                printf("R %d %d %" PRId32 " %" PRId32 " %d %d %d\\n", (int)d->recurrent_layer, (int)d->recurrent_weight_bits,
                       d->rnn_input_multiplier, d->rnn_recurrent_multiplier, (int)d->rnn_state_shift, (int)d->rnn_hidden_bits,
                       d->rnn_hidden_rounding);
                printf("V");
                for (i = 0; i < d->out_channels * d->out_channels; i++) printf(" %d", d->recurrent_weights[i]);
                printf("\\nK ");
                for (i = 0; i < d->out_channels * d->out_channels; i++)
                    putchar(d->recurrent_mask == NULL ? 'n' : ((d->recurrent_mask[i >> 3] >> (i & 7)) & 1) ? '1' : '0');
                printf("\\n");
                for (i = 0; i < d->recurrent_tile_count; i++)
                    printf("E %d %d %" PRId32 " %" PRId32 " %d %d\\n", (int)d->recurrent_tiles[i].row_start, (int)d->recurrent_tiles[i].row_count,
                           d->recurrent_tiles[i].multiplier, d->recurrent_tiles[i].shift, d->recurrent_tiles[i].rounding,
                           d->recurrent_tiles[i].bits);
            }
        }
        for (n = 0; n < RRAM_PLACEMENT_TILE_COUNT; n++) {
            const rram_placement_tile_t *p = &rram_placement[n];
            printf("L %d %d %d %d %d %d %d %d %d\\n", (int)p->layer, (int)p->array, (int)p->row_offset, (int)p->rows,
                   (int)p->input_offset, (int)p->col_offset, (int)p->output_offset, (int)p->outputs, (int)p->row_tile);
        }
        return 0;
    }

    """

    /// The lines the dump program must print, written from the model.
    func expectedDump(_ b: ModelBundle) -> [String] {
        let p = b.program, pl = b.metadata.placement!
        var romEntries = 0
        for n in p.nodes {
            switch n.op {
            case .inputQuant(let a), .activation(let a): romEntries += a.multiplier.count
            case .crossbar(let x): romEntries += x.tiles.count
            case .rnn(let r): romEntries += r.input.tiles.count + r.recurrent.tiles.count + 2 + r.hiddenSize
            case .add(let a): romEntries += 2 * a.secondMultiplier.count
            case .concat(let a): romEntries += a.quant.multiplier.count
            case .upsampleBilinear, .globalAvgPool: romEntries += 1
            default: break
            }
        }
        let xs = crossbars(b)
        let task = Array(b.metadata.task.utf8)
        var out = ["G \(p.tensors.count) \(p.nodes.count) \(xs.count) \(p.input) \(p.output) \(pl.arrayRows) \(pl.arrayCols) \(pl.arrayCount) \(pl.tiles.count) \(romEntries) \(p.tensors[p.input].shape.count) \(p.tensors[p.output].shape.count)",
                   "S \(task.count)" + task.map { " \($0)" }.joined()]
        for t in p.tensors { out.append("T \(t.shape.c) \(t.shape.h) \(t.shape.w) \(t.kind.rawValue) \(t.bits)") }
        var rom = 0, layer = 0
        for n in p.nodes {
            var lines: [String] = []
            var count = 0
            switch n.op {
            case .inputQuant, .activation, .concat, .add:
                let a = n.op.outputQuantizer!
                lines.append("A \(a.outBits) \(a.rounding.rawValue)")
                for c in a.multiplier.indices { lines.append("C \(a.multiplier[c]) \(a.shift[c]) \(a.offset[c])") }
                count = a.multiplier.count
                if case .add(let q) = n.op {
                    lines += q.secondMultiplier.map { "Q \($0)" }
                    count *= 2
                }
            case .upsampleBilinear(let u):
                lines.append("U \(u.factorH) \(u.factorW) \(u.rounding.rawValue)")
                count = 1
            case .globalAvgPool(let g):
                lines.append("G \(g.rounding.rawValue)")
                count = 1
            case .maxPool(let m):
                lines.append("P \(m.kh) \(m.kw) \(m.sh) \(m.sw)")
            case .crossbar(let x):
                lines.append("X \(layer) \(x.inChannels) \(x.outChannels) \(x.kernelH) \(x.kernelW) \(x.strideH) \(x.strideW) \(x.padH) \(x.padW) \(x.weightBits) \(x.fanIn)")
                lines.append("W" + x.weights.map { " \($0)" }.joined())
                let hasMask = layer < b.metadata.masks.count && b.metadata.masks[layer] != nil
                lines.append("M " + String((0..<x.weights.count).map { hasMask ? (kept(b, layer: layer, $0) ? "1" : "0") : "n" }))
                for t in x.tiles { lines.append("D \(t.rowStart) \(t.rowCount) \(t.multiplier) \(t.shift) \(t.rounding.rawValue) \(t.bits)") }
                count = x.tiles.count
                layer += 1
            case .rnn(let r):
                let a = r.output, x = r.input, h = r.recurrent
                lines.append("A \(a.outBits) \(a.rounding.rawValue)")
                for c in a.multiplier.indices { lines.append("C \(a.multiplier[c]) \(a.shift[c]) \(a.offset[c])") }
                lines.append("X \(layer) \(x.inChannels) \(x.outChannels) 1 1 1 1 0 0 \(x.weightBits) \(x.fanIn)")
                lines.append("W" + x.weights.map { " \($0)" }.joined())
                let hasMask = layer < b.metadata.masks.count && b.metadata.masks[layer] != nil
                lines.append("M " + String((0..<x.weights.count).map { hasMask ? (kept(b, layer: layer, $0) ? "1" : "0") : "n" }))
                for t in x.tiles { lines.append("D \(t.rowStart) \(t.rowCount) \(t.multiplier) \(t.shift) \(t.rounding.rawValue) \(t.bits)") }
                lines.append("R \(layer + 1) \(h.weightBits) \(r.inputMultiplier) \(r.recurrentMultiplier) \(r.stateShift) \(r.hiddenBits) \(r.hiddenRounding.rawValue)")
                lines.append("V" + h.weights.map { " \($0)" }.joined())
                let hasMask2 = layer + 1 < b.metadata.masks.count && b.metadata.masks[layer + 1] != nil
                lines.append("K " + String((0..<h.weights.count).map { hasMask2 ? (kept(b, layer: layer + 1, $0) ? "1" : "0") : "n" }))
                for t in h.tiles { lines.append("E \(t.rowStart) \(t.rowCount) \(t.multiplier) \(t.shift) \(t.rounding.rawValue) \(t.bits)") }
                count = x.tiles.count + h.tiles.count + 2 + a.multiplier.count
                layer += 2
            case .flatten: break
            }
            out.append("N \(n.op.kind.rawValue) \(n.inputs[0]) \(n.output) \(rom) \(count)")
            out.append("I" + n.inputs.map { " \($0)" }.joined())
            out += lines
            rom += count
        }
        for t in pl.tiles {
            let x = xs[t.layer]
            let rt = x.tiles.firstIndex { $0.rowStart == t.inputOffset }!
            out.append("L \(t.layer) \(t.array) \(t.rowOffset) \(t.rows) \(t.inputOffset) \(t.colOffset) \(t.outputOffset) \(t.outputs) \(rt)")
        }
        return out
    }

    func compileAndDump(_ b: ModelBundle, _ dir: String) throws -> [String] {
        guard let gcc = tool("gcc") else { throw XCTSkip("gcc not installed: the C compile test is skipped") }
        let work = tempDir("gcc")
        defer { removeTree(work) }
        try writeFileAtomically(Array(Self.dumpMain.utf8), to: work + "/main.c")
        let flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O0", "-I", dir]
        let c1 = try runTool(gcc, flags + ["-c", dir + "/model.c", "-o", work + "/model.o"])
        XCTAssertEqual(c1.status, 0, "model.c: " + c1.err)
        let c2 = try runTool(gcc, flags + ["-c", work + "/main.c", "-o", work + "/main.o"])
        XCTAssertEqual(c2.status, 0, "main.c with model.h: " + c2.err)
        let l = try runTool(gcc, [work + "/model.o", work + "/main.o", "-o", work + "/dump"])
        XCTAssertEqual(l.status, 0, l.err)
        let r = try runTool(work + "/dump", [])
        XCTAssertEqual(r.status, 0, r.err)
        return r.out.split(separator: "\n").map(String.init)
    }

    func testFashionCCompilesCleanAndHoldsTheModel() throws {
        let f = fixture("fashion")
        let got = try compileAndDump(f.bundle, f.dir)
        let want = expectedDump(f.bundle)
        XCTAssertEqual(got.count, want.count)
        for (k, (g, w)) in zip(got, want).enumerated() where g != w {
            XCTFail("line \(k): got '\(g.prefix(120))', want '\(w.prefix(120))'")
            break
        }
    }

    func testCRNNCCompilesCleanAndHoldsTheModel() throws {
        // an rnn node: its input matrix in the crossbar fields, its recurrent matrix (placement
        // layer + 1, here without a mask) in the recurrent fields, the output quantizer in the affine ones
        let f = fixture("crnn")
        guard f.bundle.program.nodes.contains(where: { $0.op.kind == .rnn }) else { return XCTFail("no rnn node") }
        XCTAssertEqual(try compileAndDump(f.bundle, f.dir), expectedDump(f.bundle))
    }

    func testGraphCCompilesCleanAndHoldsTheModel() throws {
        for name in ["unet", "resnet"] {
            let f = fixture(name)
            let got = try compileAndDump(f.bundle, f.dir), want = expectedDump(f.bundle)
            XCTAssertEqual(got.count, want.count, name)
            for (k, (g, w)) in zip(got, want).enumerated() where g != w {
                XCTFail("\(name) line \(k): got '\(g.prefix(120))', want '\(w.prefix(120))'")
                break
            }
        }
    }

    func testSmallCWithMissingMaskAndInt32Min() throws {
        // The small model has a layer without mask (NULL pointer); give the activation between the
        // two fc layers (not next to a max-pool, so a negative multiplier is allowed) Int32.min.
        var b = fixture("small").bundle
        guard case .activation(var a) = b.program.nodes[6].op else { return XCTFail("node 6 is not the fc activation") }
        a.multiplier[0] = .min
        a.offset[0] = -(1 << 61)
        b.program.nodes[6].op = .activation(a)
        XCTAssertNoThrow(try b.program.validate())
        let dir = tempDir("cmin") + "/out"
        defer { removeTree(dir) }
        _ = try Exporter.export(b, to: dir)
        XCTAssertEqual(try compileAndDump(b, dir), expectedDump(b))
    }

    func testCLiteralsForExtremeValues() {
        XCTAssertEqual(CSource.i32(.min), "(-2147483647 - 1)")
        XCTAssertEqual(CSource.i64(.min), "(-INT64_C(9223372036854775807) - 1)")
        XCTAssertEqual(CSource.i64(-5), "INT64_C(-5)")
        XCTAssertEqual(CSource.cString("a\"b\\c??=ü"), "\"a\\042b\\134c\\077\\077=\\303\\274\"")
    }
}
