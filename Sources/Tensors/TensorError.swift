/// Every failure of the Tensors module: file formats, images and shapes. Messages name the file
/// (and the tensor, where there is one) so an error found late still says where it came from.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened, read or written.
    case io(path: String, message: String)
    /// The file is malformed; `message` says how.
    case format(path: String, message: String)
    /// One tensor in a file is malformed (bad dtype, offsets, shape).
    case tensor(path: String, name: String, message: String)
    /// An image could not be decoded or encoded (stb's reason included).
    case image(path: String, message: String)
    /// Shapes do not fit together.
    case shape(String)

    public var description: String {
        switch self {
        case let .io(path, message): return "\(path): error: \(message)"
        case let .format(path, message): return "\(path): error: \(message)"
        case let .tensor(path, name, message): return "\(path): error: tensor '\(name)': \(message)"
        case let .image(path, message): return "\(path): error: image: \(message)"
        case let .shape(message): return "error: shape: \(message)"
        }
    }
}
