/// How a varying number of items goes through a net compiled for a few fixed batch sizes (each
/// batch size is a schedule of its own; compiling one per item count would compile without end).
public enum Batches {
    /// Consecutive ranges covering `0..<count`, each with the batch size it runs at (`sizes`,
    /// ascending): the smallest size that holds what is left when that pads by at most half of
    /// it, else the largest size that it fills; below the smallest size, that size, padded.
    public static func split(_ count: Int, sizes: [Int]) -> [(range: Range<Int>, batch: Int)] {
        precondition(!sizes.isEmpty && sizes == sizes.sorted() && sizes[0] > 0, "batch sizes must be positive and ascending")
        var out: [(range: Range<Int>, batch: Int)] = []
        var start = 0
        while start < count {
            let left = count - start
            let batch: Int
            if let up = sizes.first(where: { $0 >= left }), (up - left) * 2 <= left || up == sizes[0] {
                batch = up
            } else {
                batch = sizes.last { $0 <= left } ?? sizes[0]
            }
            out.append((start..<min(count, start + batch), batch))
            start += batch
        }
        return out
    }
}
