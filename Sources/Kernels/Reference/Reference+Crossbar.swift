import FixedPoint

extension Reference {
    /// One ADC conversion (DATAPATH.md section 6).
    public static func adc(_ acc: Int32, _ t: TileADC) -> Int32 { adcConversion(acc, t).code }

    /// One ADC conversion and whether it saturated (the scaled value lay outside the codes).
    public static func adcConversion(_ acc: Int32, _ t: TileADC) -> (code: Int32, saturated: Bool) {
        let v = roundingShiftRight(Int64(acc) * Int64(t.multiplier), 31 - Int(t.shift), t.rounding)
        let code = saturate(v, signedBits: t.bits)
        return (Int32(code), code != v)
    }

    /// A crossbar layer (DATAPATH.md sections 5 and 6): row tiles, ADCs, digital sum.
    /// `tileADC`, if given, receives each tile's ADC codes in (C,H,W) order.
    public static func crossbar(_ input: [Int32], shape: TensorShape, _ p: CrossbarParams,
                                tileADC: inout [[Int32]]) -> [Int32] {
        let os = p.outputShape(for: shape)
        let fanIn = p.fanIn
        var out = [Int32](repeating: 0, count: os.count)
        tileADC = Array(repeating: [Int32](repeating: 0, count: os.count), count: p.tiles.count)
        for o in 0..<p.outChannels {
            for oy in 0..<os.h {
                for ox in 0..<os.w {
                    let oi = (o * os.h + oy) * os.w + ox
                    var sum: Int32 = 0
                    for (t, tile) in p.tiles.enumerated() {
                        var acc: Int32 = 0
                        for r in tile.rowStart..<(tile.rowStart + tile.rowCount) {
                            let c = r / (p.kernelH * p.kernelW)
                            let y = (r / p.kernelW) % p.kernelH
                            let x = r % p.kernelW
                            let iy = oy * p.strideH - p.padH + y
                            let ix = ox * p.strideW - p.padW + x
                            var a: Int32 = 0
                            if iy >= 0 && iy < shape.h && ix >= 0 && ix < shape.w {
                                a = input[(c * shape.h + iy) * shape.w + ix]
                            }
                            acc += a * Int32(p.weights[o * fanIn + r])
                        }
                        let code = adc(acc, tile)
                        tileADC[t][oi] = code
                        sum += code
                    }
                    out[oi] = sum
                }
            }
        }
        return out
    }
}
