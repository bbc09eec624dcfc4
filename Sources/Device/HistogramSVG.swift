// A self-made SVG histogram of conductances on a logarithmic axis (formed vs reset vs pristine),
// viewable in any browser.
import Foundation

public struct HistogramSeries: Sendable {
    public var label: String
    /// CSS colour, e.g. "#d62728".
    public var color: String
    /// Values in µS (values <= 0 are counted in the lowest bin).
    public var values: [Double]
    public init(label: String, color: String, values: [Double]) { self.label = label; self.color = color; self.values = values }
}

public enum HistogramSVG {
    /// Escapes text for an SVG text node / attribute.
    public static func escape(_ s: String) -> String {
        var o = ""
        for ch in s {
            switch ch {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            default: o.append(ch)
            }
        }
        return o
    }

    static func fmt(_ x: Double) -> String { String(format: "%.1f", x) }

    /// Decade label: 0.001, 0.01, 0.1, 1, 10, 100, 1000, else 1e-5 style.
    static func decadeLabel(_ e: Int) -> String {
        switch e {
        case -3: return "0.001"
        case -2: return "0.01"
        case -1: return "0.1"
        case 0...4: return String(Int(pow(10.0, Double(e))))
        default: return "1e\(e)"
        }
    }

    /// Bin counts of `values` on `bins` equal log10 bins spanning decades lo..<hi.
    public static func counts(_ values: [Double], loDecade: Int, hiDecade: Int, bins: Int) -> [Int] {
        var c = [Int](repeating: 0, count: bins)
        let span = Double(hiDecade - loDecade)
        for v in values {
            let l = v > 0 ? log10(v) : Double(loDecade)
            var b = Int(((l - Double(loDecade)) / span * Double(bins)).rounded(.down))
            b = min(max(b, 0), bins - 1)
            c[b] += 1
        }
        return c
    }

    /// The SVG document.
    public static func render(title: String, series: [HistogramSeries], binsPerDecade: Int = 20,
                              width: Double = 860, height: Double = 540) -> String {
        let positive = series.flatMap { $0.values.filter { $0 > 0 && $0.isFinite } }
        let lo = Int((log10(positive.min() ?? 0.01)).rounded(.down))
        var hi = Int((log10(positive.max() ?? 100)).rounded(.up))
        if hi <= lo { hi = lo + 1 }
        let bins = (hi - lo) * binsPerDecade
        let allCounts = series.map { counts($0.values, loDecade: lo, hiDecade: hi, bins: bins) }
        let maxCount = max(1, allCounts.flatMap { $0 }.max() ?? 1)
        // A "nice" y range: 1, 2 or 5 times a power of ten, 5 ticks.
        let rawStep = Double(maxCount) / 5
        let mag = pow(10, (log10(rawStep)).rounded(.down))
        let step = [1.0, 2.0, 5.0, 10.0].map { $0 * mag }.first { $0 >= rawStep } ?? 10 * mag
        let yMax = step * (Double(maxCount) / step).rounded(.up)
        // The legend sits between the title and the plot, so it never hides a bar.
        let left = 80.0, right = 20.0, top = 50.0 + 20.0 * Double(series.count), bottom = 60.0
        let pw = width - left - right, ph = height - top - bottom
        func x(_ decade: Double) -> Double { left + (decade - Double(lo)) / Double(hi - lo) * pw }
        func y(_ c: Double) -> Double { top + ph - c / yMax * ph }
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="13">
        <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="white"/>
        <text x="\(fmt(width / 2))" y="26" text-anchor="middle" font-size="16" font-weight="bold">\(escape(title))</text>

        """
        // Grid and ticks.
        var t = 0.0
        while t <= yMax + step / 2 {
            s += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(y(t)))\" x2=\"\(fmt(left + pw))\" y2=\"\(fmt(y(t)))\" stroke=\"#e0e0e0\"/>\n"
            s += "<text x=\"\(fmt(left - 8))\" y=\"\(fmt(y(t) + 4))\" text-anchor=\"end\">\(Int(t))</text>\n"
            t += step
        }
        for e in lo...hi {
            let xe = x(Double(e))
            s += "<line x1=\"\(fmt(xe))\" y1=\"\(fmt(top))\" x2=\"\(fmt(xe))\" y2=\"\(fmt(top + ph))\" stroke=\"#e0e0e0\"/>\n"
            s += "<line x1=\"\(fmt(xe))\" y1=\"\(fmt(top + ph))\" x2=\"\(fmt(xe))\" y2=\"\(fmt(top + ph + 6))\" stroke=\"black\"/>\n"
            s += "<text x=\"\(fmt(xe))\" y=\"\(fmt(top + ph + 22))\" text-anchor=\"middle\">\(decadeLabel(e))</text>\n"
        }
        // Series as filled step outlines.
        for (si, ser) in series.enumerated() {
            let c = allCounts[si]
            var pts = "\(fmt(x(Double(lo)))),\(fmt(y(0)))"
            for b in 0..<bins {
                let x0 = x(Double(lo) + Double(b) / Double(binsPerDecade)), x1 = x(Double(lo) + Double(b + 1) / Double(binsPerDecade))
                pts += " \(fmt(x0)),\(fmt(y(Double(c[b])))) \(fmt(x1)),\(fmt(y(Double(c[b]))))"
            }
            pts += " \(fmt(x(Double(hi)))),\(fmt(y(0)))"
            s += "<polygon points=\"\(pts)\" fill=\"\(escape(ser.color))\" fill-opacity=\"0.35\" stroke=\"\(escape(ser.color))\" stroke-width=\"1.2\"><title>\(escape(ser.label)) (\(ser.values.count) cells)</title></polygon>\n"
        }
        // Axes and labels.
        s += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(top + ph))\" x2=\"\(fmt(left + pw))\" y2=\"\(fmt(top + ph))\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(top))\" x2=\"\(fmt(left))\" y2=\"\(fmt(top + ph))\" stroke=\"black\"/>\n"
        s += "<text x=\"\(fmt(left + pw / 2))\" y=\"\(fmt(height - 14))\" text-anchor=\"middle\">Conductance (µS, log scale)</text>\n"
        s += "<text x=\"18\" y=\"\(fmt(top + ph / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 18 \(fmt(top + ph / 2)))\">Cells per bin (\(binsPerDecade) bins per decade)</text>\n"
        // Legend.
        var ly = 40.0
        for ser in series {
            let lx = left
            s += "<rect x=\"\(fmt(lx))\" y=\"\(fmt(ly))\" width=\"14\" height=\"14\" fill=\"\(escape(ser.color))\" fill-opacity=\"0.5\" stroke=\"\(escape(ser.color))\"/>\n"
            s += "<text x=\"\(fmt(lx + 20))\" y=\"\(fmt(ly + 12))\">\(escape(ser.label)) (n = \(ser.values.count))</text>\n"
            ly += 20
        }
        s += "</svg>\n"
        return s
    }
}
