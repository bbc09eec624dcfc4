// A JSON string literal, for the few places that write JSON text by hand (fixed key order in
// manifests; `edgecli run` avoids JSONSerialization to keep its resident memory small).

/// `s` as a JSON string literal: quotes, backslash, \n, \r, \t escaped; other control
/// characters as \u00XX; everything else verbatim (UTF-8 output).
public func jsonStringLiteral(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 {
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}
