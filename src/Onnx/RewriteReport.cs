namespace Onnx;

/// <summary>What rewriting a graph into a variant did: how many nodes or tensors changed, and the weights' bytes before and after.</summary>
public sealed record RewriteReport(int Changed, long BytesBefore, long BytesAfter, int Tables = 0);
